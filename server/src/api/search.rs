//! `GET /search`: parameters checked by name, cursors, the query to the
//! store.

use super::*;

/// Results per search page unless `limit` says otherwise, and the most.
pub(super) const DEFAULT_LIMIT: usize = 50;

pub(super) const MAX_LIMIT: usize = 500;

/// Fuzzy distance unless `max_distance` says otherwise, and the most.
pub(super) const DEFAULT_MAX_DISTANCE: f32 = 1.0;

pub(super) const MAX_DISTANCE: f32 = 2.0;

pub(super) const SEARCH_PARAMS: &[&str] = &[
    "plate",
    "mode",
    "max_distance",
    "from",
    "to",
    "camera",
    "near",
    "class",
    "colour",
    "kind",
    "limit",
    "cursor",
    "reason",
];

pub(super) fn encode_cursor(c: &Cursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}.{}", c.ts_ms, c.id))
}

pub(super) fn decode_cursor(s: &str) -> ApiResult<Cursor> {
    let bad = || {
        ApiError::bad_request(
            "`cursor` is not one this server gave; pass `next_cursor` from the previous page as it is, or start again without it",
        )
    };
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let (ts, id) = text.split_once('.').ok_or_else(bad)?;
    let ts_ms = ts.parse().map_err(|_| bad())?;
    EventId::parse(id).map_err(|_| bad())?;
    Ok(Cursor {
        ts_ms,
        id: id.to_owned(),
    })
}

/// Builds a checked query from the parameters.
pub(super) fn search_query(p: &Params) -> ApiResult<SearchQuery> {
    let mode = p.one("mode")?;
    let max_distance = p.one("max_distance")?;
    let plate = match p.one("plate")?.map(str::trim).filter(|s| !s.is_empty()) {
        None => {
            if mode.is_some() {
                return Err(ApiError::bad_request("`mode` needs `plate`"));
            }
            PlateQuery::Any
        }
        Some(text) => {
            let has_wildcard = text.contains(['*', '?']);
            let mode = mode.unwrap_or(if has_wildcard { "wildcard" } else { "exact" });
            if max_distance.is_some() && mode != "fuzzy" {
                return Err(ApiError::bad_request(
                    "`max_distance` applies only to mode=fuzzy",
                ));
            }
            let canonical = |text: &str| {
                if has_wildcard {
                    return Err(ApiError::bad_request(format!(
                        "`plate`: {text:?} has wildcards; use mode=wildcard"
                    )));
                }
                normalize_plate(text).map_err(|e| ApiError::bad_request(format!("`plate`: {e}")))
            };
            match mode {
                "exact" => PlateQuery::Exact(canonical(text)?),
                "wildcard" => {
                    let pattern = PlatePattern::parse(text)
                        .map_err(|e| ApiError::bad_request(format!("`plate`: {e}")))?;
                    if pattern.is_exact() {
                        PlateQuery::Exact(pattern.as_str().to_owned())
                    } else {
                        PlateQuery::Wildcard(pattern)
                    }
                }
                "fuzzy" => {
                    let max_distance = match max_distance {
                        None => DEFAULT_MAX_DISTANCE,
                        Some(v) => v
                            .parse::<f32>()
                            .ok()
                            .filter(|d| (0.0..=MAX_DISTANCE).contains(d))
                            .ok_or_else(|| {
                                ApiError::bad_request(format!(
                                    "`max_distance`: {v:?} must be a number from 0 to {MAX_DISTANCE}"
                                ))
                            })?,
                    };
                    PlateQuery::Fuzzy {
                        plate: canonical(text)?,
                        max_distance,
                    }
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "`mode`: {other:?} is not exact, wildcard or fuzzy"
                    )))
                }
            }
        }
    };
    let from_ms = p.time("from")?;
    let to_ms = p.time("to")?;
    if let (Some(f), Some(t)) = (from_ms, to_ms) {
        if f > t {
            return Err(ApiError::bad_request("`from` is after `to`; swap them"));
        }
    }
    let cameras = p.all("camera");
    if cameras.iter().any(|c| c.is_empty()) {
        return Err(ApiError::bad_request("`camera` must not be empty"));
    }
    let near = p
        .one("near")?
        .map(|v| {
            let parts: Vec<f64> = v
                .split(',')
                .map(|x| x.trim().parse::<f64>())
                .collect::<Result<_, _>>()
                .unwrap_or_default();
            match parts[..] {
                [lat, lon, metres]
                    if (-90.0..=90.0).contains(&lat)
                        && (-180.0..=180.0).contains(&lon)
                        && metres > 0.0
                        && metres <= 100_000.0 =>
                {
                    Ok(Near { lat, lon, metres })
                }
                _ => Err(ApiError::bad_request(format!(
                    "`near`: {v:?} must be lat,lon,metres (e.g. 43.2389,76.8897,500; at most 100000 metres)"
                ))),
            }
        })
        .transpose()?;
    let kind = p
        .one("kind")?
        .map(|k| {
            [
                EventKind::PlateRead,
                EventKind::Vehicle,
                EventKind::PanicAlarm,
                EventKind::CameraStatus,
            ]
            .into_iter()
            .find(|x| x.as_str() == k)
            .map(|x| x.as_str().to_owned())
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`kind`: {k:?} is not plate_read, vehicle, panic_alarm or camera_status"
                ))
            })
        })
        .transpose()?;
    let limit = match p.one("limit")? {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!("`limit`: {v:?} must be from 1 to {MAX_LIMIT}"))
            })?,
    };
    Ok(SearchQuery {
        plate,
        from_ms,
        to_ms,
        cameras: (!cameras.is_empty()).then(|| cameras.iter().map(|c| c.to_string()).collect()),
        near,
        class: p.one("class")?.map(str::to_lowercase),
        colour: p.one("colour")?.map(str::to_lowercase),
        kind,
        limit,
        after: p.one("cursor")?.map(decode_cursor).transpose()?,
    })
}

pub(super) async fn search(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    caller.require(&[Role::Investigator, Role::Admin], "search")?;
    let params = Params::parse(raw.as_deref(), SEARCH_PARAMS)?;
    let reason = params.reason()?;
    let query = search_query(&params)?;
    let store = state.inner.store.clone();
    let page = blocking("searching", move || store.search(&query)).await?;
    audit_call(
        &state,
        &caller,
        &Method::GET,
        "/api/v1/search",
        raw.as_deref(),
        Some(reason),
        Some(page.hits.len() as u64),
    )
    .await?;
    let results: Vec<Value> = page
        .hits
        .into_iter()
        .map(|h| {
            let mut r = json!({
                "event": h.event,
                "snapshot_url": h.snapshot.map(|_| format!("/api/v1/events/{}/snapshot", h.id)),
                "clip_url": h.clip.map(|_| format!("/api/v1/events/{}/clip", h.id)),
            });
            if let Some(d) = h.distance {
                r["distance"] = json!(d);
            }
            r
        })
        .collect();
    Ok(Json(json!({
        "results": results,
        "next_cursor": page.next.as_ref().map(encode_cursor),
    })))
}
