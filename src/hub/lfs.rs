//! Large files through the hub's LFS: `preupload` says which files, the git-lfs batch API
//! gives upload and verify URLs, the bytes go to the (presigned) upload URL without the token.

use base64::Engine;
use serde_json::{json, Value};

use super::api::{sha256_hex, short, Body, HubApi, Upload};
use super::error::PublishError;
use super::RepoRef;

impl HubApi {
    /// Paths the hub wants through LFS (`POST .../preupload/{rev}`).
    pub(super) fn lfs_paths(
        &self,
        repo: &RepoRef,
        files: &[Upload],
    ) -> Result<Vec<String>, PublishError> {
        let what = format!("{repo}: preupload");
        let b64 = base64::engine::general_purpose::STANDARD;
        let list: Vec<Value> = files
            .iter()
            .map(|f| {
                json!({
                    "path": f.path,
                    "sample": b64.encode(&f.bytes[..f.bytes.len().min(512)]),
                    "size": f.bytes.len(),
                })
            })
            .collect();
        let body = json!({ "files": list });
        let url = self.api_url(
            repo,
            &format!("preupload/{}", super::api::segment(&repo.revision)),
        );
        let (_, answer) = self.request(
            &what,
            Some(repo),
            "POST",
            &url,
            Body::Json(&body),
            true,
            &[],
            true,
        )?;
        let v = self.json(&what, &answer)?;
        let Some(modes) = v.get("files").and_then(Value::as_array) else {
            return Err(PublishError::BadAnswer {
                what,
                message: "no `files` list".into(),
            });
        };
        Ok(modes
            .iter()
            .filter(|m| m.get("uploadMode").and_then(Value::as_str) == Some("lfs"))
            .filter_map(|m| m.get("path").and_then(Value::as_str).map(str::to_string))
            .collect())
    }

    /// Uploads `files` through the git-lfs batch API (basic transfer); each is then named in
    /// the commit by its sha256.
    pub(super) fn upload_lfs(&self, repo: &RepoRef, files: &[&Upload]) -> Result<(), PublishError> {
        let what = format!("{repo}: LFS upload");
        let lfs_headers = [
            (
                "accept".to_string(),
                "application/vnd.git-lfs+json".to_string(),
            ),
            (
                "content-type".to_string(),
                "application/vnd.git-lfs+json".to_string(),
            ),
        ];
        let objects: Vec<Value> = files
            .iter()
            .map(|f| json!({"oid": sha256_hex(&f.bytes), "size": f.bytes.len()}))
            .collect();
        let body = json!({
            "operation": "upload",
            "transfers": ["basic"],
            "objects": objects,
            "hash_algo": "sha256",
            "ref": {"name": repo.revision},
        });
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let url = format!("{}.git/info/lfs/objects/batch", self.git_url(repo));
        let (_, answer) = self.request(
            &what,
            Some(repo),
            "POST",
            &url,
            Body::Bytes(&bytes, "application/vnd.git-lfs+json"),
            true,
            &lfs_headers[..1],
            true,
        )?;
        let v = self.json(&what, &answer)?;
        let bad = |message: String| PublishError::BadAnswer {
            what: what.clone(),
            message,
        };
        let Some(list) = v.get("objects").and_then(Value::as_array) else {
            return Err(bad("no `objects` list".into()));
        };
        for f in files {
            let oid = sha256_hex(&f.bytes);
            let what = format!("{repo}: LFS upload of {}", f.path);
            let Some(obj) = list
                .iter()
                .find(|o| o.get("oid").and_then(Value::as_str) == Some(oid.as_str()))
            else {
                return Err(bad(format!("no answer for {}", f.path)));
            };
            if let Some(e) = obj.get("error") {
                return Err(PublishError::Status {
                    what,
                    status: e.get("code").and_then(Value::as_u64).unwrap_or(0) as u16,
                    detail: format!(" ({})", self.redact(&short(&e.to_string()))),
                });
            }
            let Some(actions) = obj.get("actions") else {
                continue; // already stored
            };
            let action_headers = |a: &Value| -> Vec<(String, String)> {
                a.get("header")
                    .and_then(Value::as_object)
                    .map(|h| {
                        h.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            if let Some(up) = actions.get("upload") {
                let href = up
                    .get("href")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(format!("no upload href for {}", f.path)))?;
                let headers = action_headers(up);
                if headers.iter().any(|(k, _)| k == "chunk_size") {
                    return Err(PublishError::Invalid(format!(
                        "{what}: the hub asks for a multipart upload ({} bytes), which this tool does not do; upload the file with `hf upload`",
                        f.bytes.len()
                    )));
                }
                // A presigned URL: no token.
                self.request(
                    &what,
                    Some(repo),
                    "PUT",
                    href,
                    Body::Bytes(&f.bytes, "application/octet-stream"),
                    false,
                    &headers,
                    true,
                )?;
            }
            if let Some(verify) = actions.get("verify") {
                let href = verify
                    .get("href")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(format!("no verify href for {}", f.path)))?;
                let body = json!({"oid": oid, "size": f.bytes.len()});
                let bytes = serde_json::to_vec(&body).unwrap_or_default();
                let mut headers = action_headers(verify);
                headers.extend(lfs_headers[..1].iter().cloned());
                self.request(
                    &what,
                    Some(repo),
                    "POST",
                    href,
                    Body::Bytes(&bytes, "application/vnd.git-lfs+json"),
                    true,
                    &headers,
                    true,
                )?;
            }
        }
        Ok(())
    }
}
