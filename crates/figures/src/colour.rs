//! Colour maps.

/// A diverging colour for `v` in `[-1, 1]`: blue (negative), white (0), red (positive).
pub fn diverging(v: f64) -> [u8; 3] {
    let t = if v.is_finite() {
        v.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let fade = |c: f64| (255.0 * (1.0 - t.abs()) + c * t.abs()).round() as u8;
    if t >= 0.0 {
        [fade(178.0), fade(24.0), fade(43.0)]
    } else {
        [fade(33.0), fade(102.0), fade(172.0)]
    }
}

/// A sequential colour for `t` in `[0, 1]` (viridis, from dark purple to yellow).
pub fn sequential(t: f64) -> [u8; 3] {
    const STOPS: [[f64; 3]; 5] = [
        [68.0, 1.0, 84.0],
        [59.0, 82.0, 139.0],
        [33.0, 145.0, 140.0],
        [94.0, 201.0, 98.0],
        [253.0, 231.0, 37.0],
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let mix = |c: usize| (STOPS[i][c] * (1.0 - f) + STOPS[i + 1][c] * f).round() as u8;
    [mix(0), mix(1), mix(2)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_and_middle() {
        assert_eq!(diverging(0.0), [255, 255, 255]);
        assert_eq!(diverging(1.0), [178, 24, 43]);
        assert_eq!(diverging(-1.0), [33, 102, 172]);
        assert_eq!(diverging(f64::NAN), [255, 255, 255]);
        assert_eq!(sequential(0.0), [68, 1, 84]);
        assert_eq!(sequential(1.0), [253, 231, 37]);
    }
}
