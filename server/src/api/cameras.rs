//! The camera and pillar registry: list, get with health, put.

use super::*;

/// Largest camera registry entry accepted.
pub(super) const MAX_CAMERA_BODY: usize = 64 * 1024;

pub(super) async fn list_cameras(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<Json<Value>> {
    let store = state.inner.store.clone();
    let cameras = blocking("reading cameras", move || {
        store
            .cameras()?
            .into_iter()
            .map(|camera| {
                let health = store.camera_health(&camera.id)?;
                Ok(camera_json(camera, &health))
            })
            .collect::<crate::error::Result<Vec<Value>>>()
    })
    .await?;
    Ok(Json(json!({ "cameras": cameras })))
}

pub(super) async fn get_camera(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let store = state.inner.store.clone();
    let found = blocking("reading cameras", move || {
        let Some(camera) = store.cameras()?.into_iter().find(|c| c.id == id) else {
            return Ok(Err(id));
        };
        let health = store.camera_health(&camera.id)?;
        Ok(Ok(camera_json(camera, &health)))
    })
    .await?;
    found
        .map(Json)
        .map_err(|id| ApiError::not_found(format!("no camera {id}; PUT it first")))
}

/// A registry entry with its `health`: the state of its latest
/// `camera_status` event, or `online` when events came after it (or came
/// with no status event at all), `unknown` when it never sent anything.
pub(super) fn camera_json(camera: Camera, health: &crate::model::CameraHealth) -> Value {
    let status = match (&health.status, health.last_seen_ms) {
        (Some((state, at)), Some(seen)) if state == "offline" && seen > *at => "online",
        (Some((state, _)), _) => state.as_str(),
        (None, Some(_)) => "online",
        (None, None) => "unknown",
    };
    let mut value = serde_json::to_value(camera).expect("a camera serialises");
    value["health"] = json!({
        "status": status,
        "since": health.status.as_ref().map(|(_, at)| rfc3339(*at)),
        "last_seen": health.last_seen_ms.map(rfc3339),
    });
    value
}

/// The body of `PUT /cameras/{id}`: the id comes from the path.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CameraBody {
    #[serde(default)]
    pub(super) id: Option<String>,
    pub(super) name: String,
    pub(super) kind: crate::model::CameraKind,
    pub(super) lat: f64,
    pub(super) lon: f64,
}

pub(super) async fn put_camera(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Camera>> {
    caller.require(&[Role::Admin], "change the camera registry")?;
    check_content_type(&headers, "application/json")?;
    let bytes = read_body(&headers, body, MAX_CAMERA_BODY, "the camera").await?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let b: CameraBody = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        ApiError::bad_request(format!("camera, field `{}`: {}", e.path(), e.inner()))
    })?;
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::bad_request(format!(
            "camera id {id:?} must be 1 to 64 printable ASCII characters"
        )));
    }
    if b.id.as_ref().is_some_and(|bid| *bid != id) {
        return Err(ApiError::bad_request(
            "the body's `id` differs from the path's; leave it out or make them equal",
        ));
    }
    if b.name.trim().is_empty() || b.name.len() > 200 {
        return Err(ApiError::bad_request("`name` must be 1 to 200 characters"));
    }
    if !(-90.0..=90.0).contains(&b.lat) || !(-180.0..=180.0).contains(&b.lon) {
        return Err(ApiError::bad_request(
            "`lat` must be within -90..90 and `lon` within -180..180 (degrees, WGS 84)",
        ));
    }
    let camera = Camera {
        id: id.clone(),
        name: b.name,
        kind: b.kind,
        lat: b.lat,
        lon: b.lon,
    };
    let store = state.inner.store.clone();
    let c = camera.clone();
    blocking("storing a camera", move || store.put_camera(&c)).await?;
    audit_call(
        &state,
        &caller,
        &Method::PUT,
        &format!("/api/v1/cameras/{id}"),
        None,
        None,
        None,
    )
    .await?;
    Ok(Json(camera))
}
