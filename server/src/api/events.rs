//! Events in and media out: `POST /events` (batches, gzip, idempotent by
//! id), clips put and got, snapshots got.

use super::*;

pub(super) fn check_content_type(headers: &HeaderMap, expected: &str) -> ApiResult<()> {
    match headers.get(header::CONTENT_TYPE).map(|v| v.to_str()) {
        None => Ok(()),
        Some(Ok(v)) if v.split(';').next().unwrap_or("").trim() == expected => Ok(()),
        Some(v) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type {:?} is not accepted here; send {expected}",
                v.unwrap_or("?")
            ),
        )),
    }
}

/// An event id from a path in its canonical (upper-case) form: a ULID is
/// the same id in either case.
pub(super) fn canonical_event_id(id: &str) -> ApiResult<String> {
    EventId::parse(id)
        .map(|id| id.to_string())
        .map_err(|e| ApiError::bad_request(format!("event id: {e}")))
}

/// Parses and checks a batch: the whole batch is refused if one event is
/// wrong, so nothing is half stored and the sender can split it.
pub(super) fn parse_batch(body: &[u8]) -> ApiResult<Vec<(Event, Option<Vec<u8>>)>> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let events: Vec<Event> = match serde_path_to_error::deserialize(&mut de) {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            // The path starts with the index of the event, `[3].plate...`.
            let index: Option<usize> = path
                .strip_prefix('[')
                .and_then(|p| p.split(']').next())
                .and_then(|i| i.parse().ok());
            let message = match index {
                _ if e.inner().is_syntax() || e.inner().is_eof() => format!(
                    "the body is not valid JSON ({}); send a JSON array of events",
                    e.inner()
                ),
                Some(i) => {
                    let id = serde_json::from_slice::<Vec<Value>>(body)
                        .ok()
                        .and_then(|v| v.get(i)?.get("id")?.as_str().map(str::to_owned));
                    let field = path.split_once('.').map(|(_, f)| f).unwrap_or("");
                    let mut m = format!("event {i}");
                    if let Some(id) = id {
                        m.push_str(&format!(" (id {id})"));
                    }
                    if !field.is_empty() {
                        m.push_str(&format!(", field `{field}`"));
                    }
                    format!("{m}: {}", e.inner())
                }
                None => format!("the body must be a JSON array of events: {}", e.inner()),
            };
            return Err(ApiError::bad_request(format!(
                "{message}; nothing in this batch was stored"
            )));
        }
    };
    de.end().map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be one JSON array of events: {e}; nothing in this batch was stored"
        ))
    })?;
    let mut out = Vec::with_capacity(events.len());
    for (i, mut event) in events.into_iter().enumerate() {
        if let Err(e) = event.validate() {
            return Err(ApiError::bad_request(format!(
                "event {i} (id {}), field `{}`: {}; nothing in this batch was stored",
                e.id, e.field, e.message
            )));
        }
        // One id, one event: the stored form is the canonical upper case.
        event.id = EventId::parse(&event.id).expect("validated").to_string();
        let snapshot = match event.snapshot.take().filter(|s| !s.is_empty()) {
            None => None,
            Some(b64) => Some(base64::engine::general_purpose::STANDARD.decode(b64).map_err(
                |e| {
                    ApiError::bad_request(format!(
                        "event {i} (id {}), field `snapshot`: not base64 ({e}); nothing in this batch was stored",
                        event.id
                    ))
                },
            )?),
        };
        out.push((event, snapshot));
    }
    Ok(out)
}

/// The request body as JSON bytes: `encoding` is the lower-cased
/// Content-Encoding; at most `limit` bytes once decompressed.
pub(super) fn decode_body(encoding: Option<&str>, raw: &[u8], limit: usize) -> ApiResult<Vec<u8>> {
    match encoding {
        None | Some("identity") => Ok(raw.to_vec()),
        Some("gzip") => {
            let mut out = Vec::new();
            // Every member: a gzip stream may be several concatenated.
            flate2::read::MultiGzDecoder::new(raw)
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    ApiError::bad_request(format!(
                        "the body says Content-Encoding: gzip but is not valid gzip ({e})"
                    ))
                })?;
            if out.len() > limit {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the decompressed body is over the limit of {} MiB; send smaller batches",
                        limit / (1024 * 1024)
                    ),
                ));
            }
            Ok(out)
        }
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding {other:?} is not supported; send gzip or none"),
        )),
    }
}

/// The ingest body and the search parameters decoded exactly as the API
/// does, without a store or a network: entry points for the fuzz harnesses
/// in `fuzz/`.
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    /// Decodes an ingest body (`encoding` as in Content-Encoding) under the
    /// default body limit; the number of events accepted, or the error the
    /// sender would get.
    pub fn ingest_body(encoding: Option<&str>, body: &[u8]) -> Result<usize, String> {
        let limit = ServerConfig::default().max_body_mb * 1024 * 1024;
        let json = decode_body(encoding, body, limit).map_err(|e| e.message)?;
        parse_batch(&json).map(|b| b.len()).map_err(|e| e.message)
    }

    /// Parses a search's query string; the error a caller would get.
    pub fn search_params(raw: &str) -> Result<(), String> {
        let params = Params::parse(Some(raw), SEARCH_PARAMS).map_err(|e| e.message)?;
        params.reason().map_err(|e| e.message)?;
        search_query(&params).map(|_| ()).map_err(|e| e.message)
    }
}

pub(super) async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    caller.require(&[Role::Edge, Role::Admin], "send events")?;
    check_content_type(&headers, "application/json")?;
    let limit = state.inner.max_body;
    let raw = read_body(&headers, body, limit, "the request body").await?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    let json = decode_body(encoding.as_deref(), &raw, limit)?;
    let batch = parse_batch(&json)?;
    if caller.role == Role::Edge {
        // An edge token speaks for the edge it is named after, only.
        if let Some((i, (e, _))) = batch
            .iter()
            .enumerate()
            .find(|(_, (e, _))| e.edge_id != caller.name)
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "event {i} is from edge {:?}, but this token speaks for edge {:?} only; \
                     give the edge a token made with --name {:?}, or set its edge_id to {:?}",
                    e.edge_id, caller.name, e.edge_id, caller.name
                ),
            ));
        }
    }
    let live = state.clone();
    let outcome = blocking("storing events", move || {
        let inner = &live.inner;
        let mut events = Vec::with_capacity(batch.len());
        let mut snapshots = Vec::new();
        for (event, snapshot) in batch {
            let hash = snapshot
                .as_ref()
                .map(|bytes| inner.blobs.put(bytes))
                .transpose()?;
            snapshots.extend(snapshot);
            events.push(NewEvent {
                event,
                snapshot: hash,
            });
        }
        // Batches of edges posting at the same time may share a commit.
        let outcome = inner.store.ingest(&events)?;
        // A retention purge that committed between the puts and this
        // commit may have removed a blob these events name: put it back.
        let put_back = snapshots
            .iter()
            .try_for_each(|bytes| inner.blobs.put(bytes).map(drop));
        // After the commit, only for events stored now, in commit order;
        // even when a blob could not be put back, as calls after this one
        // wait for it.
        inner
            .publish_order
            .in_turn(outcome.seq, !outcome.alerts.is_empty(), || {
                live.publish(&outcome.alerts)
            });
        put_back?;
        Ok(outcome)
    })
    .await?;
    let m = &state.inner.metrics;
    m.events_ingested
        .fetch_add(outcome.accepted, Ordering::Relaxed);
    m.events_duplicate
        .fetch_add(outcome.duplicates, Ordering::Relaxed);
    m.ingest_batches.fetch_add(1, Ordering::Relaxed);
    Ok(Json(json!({
        "accepted": outcome.accepted,
        "duplicates": outcome.duplicates,
    })))
}

pub(super) async fn put_clip(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    caller.require(&[Role::Edge, Role::Admin], "upload clips")?;
    let id = canonical_event_id(&id)?;
    check_content_type(&headers, "video/mp4")?;
    let store = state.inner.store.clone();
    let i = id.clone();
    let Some(event) = blocking("looking up an event", move || store.event_blobs(&i)).await? else {
        return Err(ApiError::not_found(format!(
            "no event {id}: send the event first, then its clip"
        )));
    };
    if caller.role == Role::Edge && event.edge_id != caller.name {
        let refusal = format!(
            "event {id} is from edge {:?}; only that edge may add its clip",
            event.edge_id
        );
        return Err(refused_clip(&state, &caller, &id, refusal, StatusCode::FORBIDDEN).await);
    }
    let bytes = read_body(&headers, body, state.inner.max_clip, "the clip").await?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "the clip is empty; send the MP4 bytes",
        ));
    }
    let size = bytes.len();
    let hash = BlobStore::hash(&bytes);
    let linked = match &event.clip {
        // The same clip again (an answer was lost): already stored.
        Some(stored) if *stored == hash => false,
        Some(stored) => {
            let refusal = already_has_clip(&id, stored);
            return Err(refused_clip(&state, &caller, &id, refusal, StatusCode::CONFLICT).await);
        }
        None => {
            let (store, blobs, i, h) = (
                state.inner.store.clone(),
                state.inner.blobs.clone(),
                id.clone(),
                hash.clone(),
            );
            let (linked, now) = blocking("storing a clip", move || {
                blobs.put(&bytes)?;
                let linked = store.attach_clip(&i, &h)?;
                // As after an ingest: a purge may have removed it meanwhile.
                blobs.put(&bytes)?;
                Ok((linked, store.event_blobs(&i)?))
            })
            .await?;
            match now.and_then(|e| e.clip) {
                Some(stored) if stored == hash => linked,
                Some(stored) => {
                    // Another upload won the race.
                    let refusal = already_has_clip(&id, &stored);
                    let status = StatusCode::CONFLICT;
                    return Err(refused_clip(&state, &caller, &id, refusal, status).await);
                }
                None => return Err(ApiError::not_found(format!("no event {id}"))),
            }
        }
    };
    if linked {
        state
            .inner
            .metrics
            .clips_stored
            .fetch_add(1, Ordering::Relaxed);
        let mut entry = audit_entry(&caller, &Method::PUT, &clip_path(&id), None, None, None);
        entry.detail = Some(format!(
            "clip of event {id} stored: sha256 {hash}, {size} bytes"
        ));
        append_audit(&state, entry).await?;
    }
    let status = if linked {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({ "id": id, "sha256": hash, "bytes": size })),
    )
        .into_response())
}

/// Why other bytes for an event's clip are refused.
pub(super) fn already_has_clip(id: &str, stored: &str) -> String {
    format!("event {id} already has its clip (sha256 {stored}); evidence is written once")
}

pub(super) fn clip_path(id: &str) -> String {
    format!("/api/v1/events/{id}/clip")
}

/// A refused clip upload, written to the audit log (an attempt to change
/// evidence is itself evidence) and answered with `status`.
pub(super) async fn refused_clip(
    state: &AppState,
    caller: &Caller,
    id: &str,
    refusal: String,
    status: StatusCode,
) -> ApiError {
    let mut entry = audit_entry(caller, &Method::PUT, &clip_path(id), None, None, None);
    entry.detail = Some(format!("refused: {refusal}"));
    if let Err(e) = append_audit(state, entry).await {
        return e;
    }
    ApiError::new(status, refusal)
}

#[derive(Clone, Copy)]
pub(super) enum Media {
    Snapshot,
    Clip,
}

pub(super) async fn get_media(
    state: AppState,
    caller: Caller,
    id: String,
    raw: Option<String>,
    media: Media,
) -> ApiResult<Response> {
    let (noun, path, content_type) = match media {
        Media::Snapshot => (
            "snapshot",
            format!("/api/v1/events/{id}/snapshot"),
            "image/jpeg",
        ),
        Media::Clip => ("clip", format!("/api/v1/events/{id}/clip"), "video/mp4"),
    };
    caller.require(
        &[Role::Investigator, Role::Operator, Role::Admin],
        &format!("download {noun}s"),
    )?;
    let params = Params::parse(raw.as_deref(), &["reason"])?;
    let reason = params.reason()?;
    let id = canonical_event_id(&id)?;
    let store = state.inner.store.clone();
    let i = id.clone();
    let blobs = blocking("looking up an event", move || store.event_blobs(&i))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no event {id}")))?;
    let hash = match media {
        Media::Snapshot => blobs.snapshot,
        Media::Clip => blobs.clip,
    }
    .ok_or_else(|| ApiError::not_found(format!("event {id} has no {noun}")))?;
    let store_blobs = state.inner.blobs.clone();
    let h = hash.clone();
    let bytes = blocking("reading a blob", move || store_blobs.get(&h))
        .await?
        .ok_or_else(|| ApiError::internal("reading a blob", format!("blob {hash} is missing")))?;
    audit_call(
        &state,
        &caller,
        &Method::GET,
        &path,
        raw.as_deref(),
        Some(reason),
        Some(1),
    )
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        bytes,
    )
        .into_response())
}

pub(super) async fn get_snapshot(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    get_media(state, caller, id, raw, Media::Snapshot).await
}

pub(super) async fn get_clip(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    get_media(state, caller, id, raw, Media::Clip).await
}
