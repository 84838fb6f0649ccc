//! Pixels inside an SVG: an RGB buffer encoded as PNG, base64, in an `<image>` element.

/// An RGB image, row-major.
pub struct Pixels {
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
    /// `width · height · 3` bytes.
    pub rgb: Vec<u8>,
}

impl Pixels {
    /// A `width × height` image filled with `fill`.
    pub fn new(width: usize, height: usize, fill: [u8; 3]) -> Self {
        Pixels {
            width,
            height,
            rgb: fill.repeat(width * height),
        }
    }

    /// Set pixel `(x, y)`; outside the image, nothing.
    pub fn set(&mut self, x: usize, y: usize, c: [u8; 3]) {
        if x < self.width && y < self.height {
            let at = (y * self.width + x) * 3;
            self.rgb[at..at + 3].copy_from_slice(&c);
        }
    }

    fn png(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut bytes, self.width as u32, self.height as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header()?;
            w.write_image_data(&self.rgb)?;
        }
        Ok(bytes)
    }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                s.push(ABC[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Put a white background and `images` (each at its pixel position `(x, y)`, shown at its own
/// size) under everything drawn in the SVG document `svg` (right after its opening tag), so that
/// text and axes drawn over the pixels stay visible.
pub fn insert_images(svg: &mut String, images: &[(i32, i32, Pixels)]) -> Result<(), String> {
    let mut elements = String::new();
    for (x, y, p) in images {
        if p.width == 0 || p.height == 0 {
            continue;
        }
        let data = base64(&p.png().map_err(|e| e.to_string())?);
        elements.push_str(&format!(
            "<image x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\" preserveAspectRatio=\"none\" \
             image-rendering=\"pixelated\" style=\"image-rendering:pixelated\" \
             href=\"data:image/png;base64,{data}\" xlink:href=\"data:image/png;base64,{data}\"/>\n",
            p.width, p.height
        ));
    }
    let open = svg
        .find("<svg")
        .and_then(|start| svg[start..].find('>').map(|end| start + end + 1))
        .ok_or_else(|| "the SVG document has no opening tag".to_string())?;
    svg.insert_str(
        open,
        &format!(
            "\n<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"#FFFFFF\"/>\n{elements}"
        ),
    );
    if !svg.contains("xmlns:xlink") {
        *svg = svg.replacen(
            "<svg ",
            "<svg xmlns:xlink=\"http://www.w3.org/1999/xlink\" ",
            1,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_of_known_strings() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn images_go_under_everything_else() {
        let mut svg = "<svg width=\"10\">\n<text>t</text>\n</svg>\n".to_string();
        let mut p = Pixels::new(2, 1, [255, 0, 0]);
        p.set(1, 0, [0, 0, 255]);
        p.set(5, 5, [0, 0, 0]);
        insert_images(&mut svg, &[(3, 4, p)]).unwrap();
        assert!(svg.contains("<image x=\"3\" y=\"4\" width=\"2\" height=\"1\""));
        assert!(svg.find("<image").unwrap() < svg.find("<text").unwrap());
        assert!(svg.find("fill=\"#FFFFFF\"").unwrap() < svg.find("<image").unwrap());
        assert!(svg.trim_end().ends_with("</svg>") && svg.contains("xmlns:xlink"));
        assert!(insert_images(&mut "no".to_string(), &[]).is_err());
    }
}
