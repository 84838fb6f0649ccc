//! The README's Findings section is what `cargo xtask findings` generates from the committed
//! full study under `results/full`.

use xtask::repro::findings::{Study, render, section};

#[test]
fn the_readme_findings_are_generated_from_the_committed_study() {
    let root = xtask::root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let results = root.join("results/full");
    let published = results.join("summary.json").is_file();
    match (section(&readme), published) {
        (Some(found), true) => {
            let generated = render(&Study::open(&results).unwrap(), "results/full");
            assert!(
                found == generated,
                "README.md's Findings differ from what results/full generates: run \
                 `cargo xtask findings results/full --write README.md`"
            );
        }
        (Some(_), false) => {
            panic!("README.md has a Findings section but results/full has no summary.json")
        }
        (None, true) => panic!(
            "results/full holds a study but README.md has no Findings section: run \
             `cargo xtask findings results/full --write README.md`"
        ),
        // No full study published yet: nothing to agree with.
        (None, false) => {}
    }
}
