//! Tenants never see each other's data, and nothing is served without a token.

use pictureday_tests::images::{jpeg, photo};
use pictureday_tests::{Backend, TestApp, file_part, zip_of};
use reqwest::multipart::Form;

on_each_backend!(a_district_token_sees_only_its_district);

async fn a_district_token_sees_only_its_district(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let springfield = app.create_district("springfield", "Springfield").await?;
    let shelbyville = app.create_district("shelbyville", "Shelbyville").await?;
    let (status, _) = app
        .upload_roster(
            &springfield,
            "springfield",
            "role,sis_id,student_number,first_name,last_name\nstudent,S1,1,A,B\n",
        )
        .await?;
    assert_eq!(status, 200);
    let (status, accepted) = app
        .import(
            &springfield,
            "springfield",
            Form::new().part(
                "archive",
                file_part("a.zip", zip_of(&[("1.jpg", jpeg(photo(400, 500, 1))?)])?),
            ),
        )
        .await?;
    assert_eq!(status, 202);
    let job = accepted["job_id"].as_str().unwrap_or_default().to_owned();
    let finished = app.wait_for_job(&springfield, "springfield", &job).await?;
    assert_eq!(finished["state"], "finished");
    let people = app
        .get_json(&springfield, "/v1/districts/springfield/people")
        .await?;
    let person = people["items"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // Every springfield resource is a 404 to shelbyville's token, exactly like a missing one.
    for path in [
        "/v1/districts/springfield".to_owned(),
        "/v1/districts/springfield/people".to_owned(),
        format!("/v1/districts/springfield/people/{person}"),
        format!("/v1/districts/springfield/people/{person}/photo"),
        format!("/v1/districts/springfield/people/{person}/photos"),
        "/v1/districts/springfield/jobs".to_owned(),
        format!("/v1/districts/springfield/jobs/{job}"),
        format!("/v1/districts/springfield/jobs/{job}/log"),
        "/v1/districts/springfield/reports/missing-photos.csv".to_owned(),
        "/v1/districts/nowhere/people".to_owned(),
    ] {
        let response = app.get(&shelbyville, &path).await?;
        assert_eq!(response.status(), 404, "{path}");
    }
    // Nor can it reach springfield's job or person through its own district.
    for path in [
        format!("/v1/districts/shelbyville/jobs/{job}"),
        format!("/v1/districts/shelbyville/people/{person}/photo"),
    ] {
        assert_eq!(app.get(&shelbyville, &path).await?.status(), 404, "{path}");
    }
    let own = app
        .get_json(&shelbyville, "/v1/districts/shelbyville/people")
        .await?;
    assert_eq!(own["items"], serde_json::json!([]));
    let listed = app.get_json(&shelbyville, "/v1/districts").await?;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));

    // No token, a wrong token: 401. A district token cannot create districts: 403.
    let anonymous = app
        .http
        .get(app.url(&format!("/v1/districts/springfield/people/{person}/photo")))
        .send()
        .await?;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        app.get("pd_not-a-token", "/v1/districts/springfield/people")
            .await?
            .status(),
        401
    );
    let forbidden = app
        .http
        .post(app.url("/v1/districts"))
        .bearer_auth(&springfield)
        .json(&serde_json::json!({"id": "ogdenville", "name": "Ogdenville"}))
        .send()
        .await?;
    assert_eq!(forbidden.status(), 403);
    app.stop().await
}
