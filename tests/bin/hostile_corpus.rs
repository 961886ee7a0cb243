//! Writes the hostile-input corpus (`pictureday_tests::corpus`) to a directory, one folder per
//! case with what it sends and a README saying how and what must happen
//! (`scripts/hostile-corpus.sh [DIR]`).

fn main() -> anyhow::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| std::path::PathBuf::from("hostile-corpus"), Into::into);
    std::fs::create_dir_all(&dir)?;
    let count = pictureday_tests::corpus::write_all(&dir)?;
    println!("{count} cases written to {}", dir.display());
    Ok(())
}
