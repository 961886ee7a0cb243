//! `pictureday missing`: who has no photo, as a count and a table, or the CSV as the server
//! writes it (`--csv`, for a spreadsheet or SmartPass's alert list).

use anyhow::Context as _;
use std::io::Write as _;

use super::{Client, MissingArgs, Outcome};

pub async fn run(args: MissingArgs) -> anyhow::Result<Outcome> {
    let client = Client::connect(&args.client).await?;
    let mut query = Vec::new();
    if let Some(role) = &args.role {
        query.push(format!("role={role}"));
    }
    if let Some(school) = &args.school {
        query.push(format!("school={school}"));
    }
    let path = if query.is_empty() {
        "/reports/missing-photos.csv".to_owned()
    } else {
        format!("/reports/missing-photos.csv?{}", query.join("&"))
    };
    let csv = client
        .get(&path)
        .await?
        .bytes()
        .await
        .context("downloading the missing-photos report")?;
    if args.csv {
        std::io::stdout().write_all(&csv)?;
        return Ok(Outcome::Done);
    }
    let mut reader = csv::Reader::from_reader(csv.as_ref());
    let mut rows = Vec::new();
    for record in reader.records() {
        rows.push(record.context("reading the report")?);
    }
    println!(
        "{} without a photo in district {}",
        rows.len(),
        client.district
    );
    if !rows.is_empty() {
        println!();
        println!(
            "{:<8} {:<24} {:<24} {:<12} STUDENT NO.",
            "ROLE", "NAME", "SCHOOL", "SIS ID"
        );
        for row in &rows {
            let field = |i: usize| row.get(i).unwrap_or("");
            println!(
                "{:<8} {:<24} {:<24} {:<12} {}",
                field(0),
                format!("{} {}", field(4), field(5)),
                field(6),
                field(1),
                field(2)
            );
        }
    }
    Ok(Outcome::Done)
}
