//! Hub access against a stand-in hub (tests/util/hub_server.rs): downloads into a temporary
//! cache in the standard layout, cache reuse, offline mode, the token header, and error messages.

use std::path::{Path, PathBuf};

use crate::util::hub_server::{commit_of, HubServer};
use crate::util::root;
use rewardbench::backend::Device;
use rewardbench::hub::{Hub, HubConfig, HubError, RepoKind, RepoRef};
use rewardbench::model;

/// The tiny Llama reward model in Optimum's layout (onnx/model.onnx, tokenizer at the root),
/// and a flat copy with an external-data file beside the graph.
fn server() -> HubServer {
    let srv = HubServer::start();
    let m = root().join("fixtures/models/tiny-llama-rm");
    let side = [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ];
    let mut optimum: Vec<(&str, PathBuf)> = side.iter().map(|f| (*f, m.join(f))).collect();
    optimum.push(("onnx/model.onnx", m.join("model.onnx")));
    optimum.push(("model.safetensors", m.join("model.safetensors")));
    srv.add_repo("models/acme/tiny-rm-optimum", &optimum);
    let mut flat: Vec<(&str, PathBuf)> = side.iter().map(|f| (*f, m.join(f))).collect();
    flat.push(("model.onnx", m.join("model.onnx")));
    // Stands in for external weights: only its download is checked here.
    flat.push(("model.onnx_data", m.join("fixture.json")));
    srv.add_repo("models/acme/tiny-rm-flat", &flat);
    // An `export_rm.py --attention auto` export: the packed graph and the eager one for GPUs.
    let mut two: Vec<(&str, PathBuf)> = side.iter().map(|f| (*f, m.join(f))).collect();
    two.push(("model.onnx", m.join("gqa/model.onnx")));
    two.push(("gpu/model.onnx", m.join("model.onnx")));
    two.push(("gpu/model.onnx_data", m.join("fixture.json")));
    srv.add_repo("models/acme/tiny-rm-two-graphs", &two);
    let x = root().join("fixtures/models/tiny-llama-rm-extdata");
    let mut ext: Vec<(&str, PathBuf)> = side.iter().map(|f| (*f, x.join(f))).collect();
    ext.push(("model.onnx", x.join("model.onnx")));
    srv.add_repo("models/acme/tiny-rm-graph-only", &ext);
    ext.push(("model.onnx_data", x.join("model.onnx_data")));
    srv.add_repo("models/acme/tiny-rm-extdata", &ext);
    srv.add_repo(
        "models/acme/no-onnx",
        &[("config.json", m.join("config.json"))],
    );
    srv
}

fn hub(srv: &HubServer, cache: &Path) -> Hub {
    Hub::new(HubConfig::new(&srv.endpoint, cache)).unwrap()
}

fn resolve(h: &Hub, id: &str) -> Result<PathBuf, model::ModelError> {
    let h = h.clone();
    model::resolve(Path::new(id), None, Some(Device::Cpu), &move || {
        Ok(h.clone())
    })
}

#[test]
fn downloads_into_the_standard_cache_layout() {
    let srv = server();
    let cache = tempfile::tempdir().unwrap();
    let dir = resolve(&hub(&srv, cache.path()), "acme/tiny-rm-optimum").unwrap();
    let commit = commit_of("models/acme/tiny-rm-optimum");
    let repo = cache.path().join("models--acme--tiny-rm-optimum");
    assert_eq!(dir, repo.join("snapshots").join(&commit));
    assert_eq!(
        std::fs::read_to_string(repo.join("refs/main")).unwrap(),
        commit
    );
    for f in [
        "onnx/model.onnx",
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        let p = dir.join(f);
        assert!(p.is_file(), "{f}");
        assert!(
            std::fs::symlink_metadata(&p)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{f} links into blobs/"
        );
    }
    assert!(
        !dir.join("model.safetensors").exists(),
        "only what an ONNX evaluation needs"
    );
    assert_eq!(
        std::fs::read(dir.join("onnx/model.onnx")).unwrap(),
        std::fs::read(root().join("fixtures/models/tiny-llama-rm/model.onnx")).unwrap()
    );
    assert!(std::fs::read_dir(repo.join("blobs")).unwrap().count() >= 5);
    let files = model::ModelFiles::locate(&dir, Device::Cpu).unwrap();
    assert_eq!(files.onnx, dir.join("onnx/model.onnx"));
    assert_eq!(files.name(), "acme/tiny-rm-optimum");

    let flat = resolve(&hub(&srv, cache.path()), "acme/tiny-rm-flat").unwrap();
    assert!(flat.join("model.onnx").is_file() && flat.join("model.onnx_data").is_file());
}

#[test]
fn a_gpu_device_downloads_the_gpu_graph_and_cpu_the_other() {
    let srv = server();
    let id = "acme/tiny-rm-two-graphs";
    let fetch = |device| {
        let cache = tempfile::tempdir().unwrap();
        let h = hub(&srv, cache.path());
        let dir =
            model::resolve(Path::new(id), None, Some(device), &move || Ok(h.clone())).unwrap();
        let has = |f: &str| dir.join(f).is_file();
        let got = (
            has("model.onnx"),
            has("gpu/model.onnx"),
            has("gpu/model.onnx_data"),
        );
        let files = model::ModelFiles::locate(&dir, device).unwrap();
        (
            got,
            files.onnx.strip_prefix(&dir).unwrap().to_path_buf(),
            cache,
        )
    };
    let (got, onnx, _c) = fetch(Device::Cuda);
    assert_eq!(got, (false, true, true), "gpu/ graph and its data only");
    assert_eq!(onnx, Path::new("gpu/model.onnx"));
    let (got, onnx, _c) = fetch(Device::Cpu);
    assert_eq!(got, (true, false, false), "the CPU graph only");
    assert_eq!(onnx, Path::new("model.onnx"));
}

#[test]
fn cache_is_reused_and_offline_mode_needs_no_server() {
    let srv = server();
    let cache = tempfile::tempdir().unwrap();
    let first = resolve(&hub(&srv, cache.path()), "acme/tiny-rm-optimum").unwrap();
    let downloads = srv
        .requests()
        .iter()
        .filter(|r| r.path.contains("/resolve/"))
        .count();
    assert!(downloads >= 5, "metadata + body per file: {downloads}");
    srv.clear_requests();

    // Online again: one listing request, no file request.
    let again = resolve(&hub(&srv, cache.path()), "acme/tiny-rm-optimum").unwrap();
    assert_eq!(again, first);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert!(reqs[0]
        .path
        .starts_with("/api/models/acme/tiny-rm-optimum/revision/main"));
    srv.clear_requests();

    // Offline: nothing is asked of the server, even a dead one.
    let mut cfg = HubConfig::new("http://127.0.0.1:9", cache.path());
    cfg.offline = true;
    let off = Hub::new(cfg.clone()).unwrap();
    assert_eq!(resolve(&off, "acme/tiny-rm-optimum").unwrap(), first);
    assert!(srv.requests().is_empty());
    // ... and a repo never downloaded is a clear error.
    let e = resolve(&off, "acme/tiny-rm-flat").unwrap_err().to_string();
    assert!(
        e.contains("HF_HUB_OFFLINE") && e.contains("acme/tiny-rm-flat"),
        "{e}"
    );
    // A pinned commit also resolves offline.
    let snap = off
        .snapshot(&RepoRef::new(
            "acme/tiny-rm-optimum",
            RepoKind::Model,
            Some(&commit_of("models/acme/tiny-rm-optimum")),
        ))
        .unwrap();
    assert!(snap.files.iter().any(|f| f == "onnx/model.onnx"));
}

#[test]
fn token_is_sent_and_required() {
    let srv = server();
    srv.require_token("hf_secret");
    let cache = tempfile::tempdir().unwrap();
    let e = resolve(&hub(&srv, cache.path()), "acme/tiny-rm-optimum")
        .unwrap_err()
        .to_string();
    assert!(e.contains("401") && e.contains("HF_TOKEN"), "{e}");
    srv.clear_requests();
    let mut cfg = HubConfig::new(&srv.endpoint, cache.path());
    cfg.token = Some("hf_secret".into());
    resolve(&Hub::new(cfg).unwrap(), "acme/tiny-rm-optimum").unwrap();
    let reqs = srv.requests();
    assert!(reqs.len() > 1);
    for r in &reqs {
        assert_eq!(
            r.authorization.as_deref(),
            Some("Bearer hf_secret"),
            "{}",
            r.path
        );
    }
}

#[test]
fn token_comes_from_hf_token_or_the_token_file() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("token"), "hf_from_file\n").unwrap();
    let h = home.path().to_str().unwrap().to_string();
    let c = HubConfig::from_vars(|k| (k == "HF_HOME").then(|| h.clone()));
    assert_eq!(c.token.as_deref(), Some("hf_from_file"));
    let c = HubConfig::from_vars(|k| match k {
        "HF_HOME" => Some(h.clone()),
        "HF_TOKEN" => Some("hf_env".into()),
        _ => None,
    });
    assert_eq!(c.token.as_deref(), Some("hf_env"));
}

#[test]
fn missing_repos_files_and_server_errors_are_clear() {
    let srv = server();
    let cache = tempfile::tempdir().unwrap();
    let h = hub(&srv, cache.path());
    let e = resolve(&h, "acme/nope").unwrap_err().to_string();
    assert!(
        e.contains("acme/nope") && e.contains("404") && e.contains("not found"),
        "{e}"
    );
    let e = resolve(&h, "acme/no-onnx").unwrap_err().to_string();
    assert!(
        e.contains("no ONNX export") && e.contains("onnx/model.onnx"),
        "{e}"
    );
    // A file the listing names but the server will not give.
    let snap = h
        .snapshot(&RepoRef::new("acme/tiny-rm-flat", RepoKind::Model, None))
        .unwrap();
    let e = h.fetch(&snap, "missing.bin").unwrap_err();
    assert!(matches!(e, HubError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("missing.bin"));

    srv.fail("/resolve/");
    let e = resolve(
        &hub(&srv, tempfile::tempdir().unwrap().path()),
        "acme/tiny-rm-flat",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("HTTP 500") && e.contains("HF_HUB_OFFLINE"),
        "{e}"
    );

    let e = resolve(&hub_at("http://127.0.0.1:9"), "acme/tiny-rm-flat")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cannot reach the hub at http://127.0.0.1:9"),
        "{e}"
    );
}

fn hub_at(endpoint: &str) -> Hub {
    let dir = std::env::temp_dir().join(format!("rb-hub-none-{}", std::process::id()));
    Hub::new(HubConfig::new(endpoint, &dir)).unwrap()
}

#[test]
fn external_data_is_downloaded_beside_the_graph_and_a_missing_one_named() {
    let srv = server();
    let cache = tempfile::tempdir().unwrap();
    let dir = resolve(&hub(&srv, cache.path()), "acme/tiny-rm-extdata").unwrap();
    let x = root().join("fixtures/models/tiny-llama-rm-extdata");
    assert_eq!(
        std::fs::read(dir.join("model.onnx_data")).unwrap(),
        std::fs::read(x.join("model.onnx_data")).unwrap()
    );
    let files = model::ModelFiles::locate(&dir, Device::Cpu).unwrap();
    assert_eq!(files.external, [dir.join("model.onnx_data")]);
    let e = resolve(&hub(&srv, cache.path()), "acme/tiny-rm-graph-only").unwrap_err();
    assert!(
        matches!(e, model::ModelError::HubMissingExternalData { .. })
            && e.to_string().contains("model.onnx_data"),
        "{e}"
    );
}
