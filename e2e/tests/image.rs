//! The container image (`Containerfile`).
//!
//! - Always: the Containerfile's final stage is `FROM scratch`, runs as nobody, and ships the two
//!   binaries at exactly the paths deploy/ferrolb.yaml starts them from.
//! - With root and buildah: the final stage's instructions, verbatim, build into an image around
//!   the workspace's binaries, and the image config says what the manifests rely on. The build
//!   uses a private store in a temporary directory with the `vfs` driver and chroot isolation:
//!   CI may itself run in a container whose root is overlayfs, where buildah's default overlay
//!   store cannot mount, and the system store is none of a test's business. When even a
//!   one-file scratch image cannot be built in that store, buildah cannot build on this machine
//!   and the test skips loudly with buildah's own words.
//! - The full multi-stage build needs the Rust builder image. There is no registry access for
//!   container images here, so it runs only when that image is already in local storage or
//!   `FERROLB_IMAGE_BUILD=1` allows a pull; otherwise it skips loudly.

use std::path::{Path, PathBuf};
use std::process::Command;

use ferrolb_e2e::{program_exists, require_root_and, workspace_bin};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn containerfile() -> String {
    std::fs::read_to_string(repo().join("Containerfile")).expect("Containerfile")
}

/// The instructions after the last `FROM`, continuation lines joined, comments dropped.
fn final_stage(text: &str) -> (String, Vec<String>) {
    let mut from = String::new();
    let mut stage = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
                continue;
            }
            None => current.push_str(line),
        }
        let instruction = std::mem::take(&mut current);
        if let Some(image) = instruction.strip_prefix("FROM ") {
            from = image.to_owned();
            stage.clear();
        } else {
            stage.push(instruction);
        }
    }
    (from, stage)
}

/// The first `command` entry of the Deployment's and the DaemonSet's container.
fn manifest_commands() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("deploy/ferrolb.yaml")).expect("deploy yaml");
    // `ferrolb-controller manifests` starts every document with a `---` line.
    text.split("\n---\n")
        .map(|d| serde_yaml_ng::from_str::<serde_yaml_ng::Value>(d).expect("YAML document"))
        .filter(|d| d["kind"] == "Deployment" || d["kind"] == "DaemonSet")
        .map(|d| {
            d["spec"]["template"]["spec"]["containers"][0]["command"][0]
                .as_str()
                .expect("a command")
                .to_owned()
        })
        .collect()
}

#[test]
fn final_stage_is_scratch_non_root_and_holds_what_the_manifests_run() {
    let (from, stage) = final_stage(&containerfile());
    assert_eq!(from, "scratch");
    assert!(stage.iter().any(|i| i == "USER 65534:65534"), "{stage:?}");
    assert!(
        stage
            .iter()
            .any(|i| i == r#"ENTRYPOINT ["/ferrolb-controller"]"#),
        "{stage:?}"
    );
    let copies: Vec<_> = stage.iter().filter(|i| i.starts_with("COPY ")).collect();
    let commands = manifest_commands();
    assert_eq!(commands.len(), 2);
    for command in commands {
        let file = command.trim_start_matches('/');
        assert!(
            copies
                .iter()
                .any(|c| c.contains(&format!("/{file} ")) && c.ends_with(" /")),
            "the image has no {command}: {copies:?}"
        );
    }
}

/// A buildah store of the test's own (`--root`/`--runroot` in a temporary directory, `vfs`
/// driver), removed with everything in it on drop, also when the test panics.
struct PrivateStore {
    dir: tempfile::TempDir,
}

impl PrivateStore {
    fn new() -> Self {
        PrivateStore {
            dir: tempfile::tempdir().expect("tempdir for the buildah store"),
        }
    }

    /// `buildah` with this store's global options.
    fn buildah(&self) -> Command {
        let mut c = Command::new("buildah");
        c.arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .args(["--storage-driver", "vfs"]);
        c
    }

    /// Whether buildah can build any image here at all: a one-file `FROM scratch` image, built
    /// the way the real test builds. Err carries buildah's words. A failure here is the
    /// machine's (no usable storage, no mounts in a container); a failure after a good probe
    /// is the Containerfile's.
    fn probe(&self) -> Result<(), String> {
        let ctx = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        std::fs::write(ctx.path().join("probe"), b"probe\n").map_err(|e| e.to_string())?;
        std::fs::write(
            ctx.path().join("Containerfile"),
            "FROM scratch\nCOPY probe /probe\n",
        )
        .map_err(|e| e.to_string())?;
        let out = build_in(
            self.buildah(),
            "localhost/ferrolb-e2e-probe:test",
            ctx.path(),
        )
        .map_err(|e| format!("buildah did not start: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(())
    }
}

impl Drop for PrivateStore {
    fn drop(&mut self) {
        // vfs layers are plain directories, but containers-storage may leave mounts (shm,
        // overlay of the runroot) behind; `rmi --all` and `rm --all` release them first.
        let _ = self.buildah().args(["rm", "--all"]).output();
        let _ = self.buildah().args(["rmi", "--all", "--force"]).output();
    }
}

/// Removes a buildah image from the system store on drop, also when the test panics.
struct ImageGuard(String);

impl Drop for ImageGuard {
    fn drop(&mut self) {
        let _ = Command::new("buildah")
            .args(["rmi", "-f", &self.0])
            .output();
    }
}

/// `buildah build` of `ctx/Containerfile` tagged `tag`, through `buildah` (the system store's
/// command or a [`PrivateStore`]'s). Chroot isolation: the final stage runs nothing, and the
/// full build's RUN steps need no more than a chroot.
fn build_in(mut buildah: Command, tag: &str, ctx: &Path) -> std::io::Result<std::process::Output> {
    buildah
        .args(["build", "--quiet", "--isolation", "chroot", "-t", tag, "-f"])
        .arg(ctx.join("Containerfile"))
        .arg(ctx)
        .output()
}

/// `buildah inspect` of `image` through `buildah`, as JSON; panics with buildah's words.
fn inspect_in(mut buildah: Command, image: &str) -> serde_json::Value {
    let out = buildah
        .args(["inspect", "--type", "image", image])
        .output()
        .expect("buildah inspect");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("inspect JSON")
}

#[test]
fn final_stage_builds_around_the_workspace_binaries() {
    if !require_root_and(&["buildah"]) {
        return;
    }
    let bins: Vec<_> = ["ferrolb-controller", "ferrolb-speaker"]
        .iter()
        .map(|b| workspace_bin(b))
        .collect();
    let bins: Vec<PathBuf> = match bins.into_iter().collect() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("SKIP: {e} (cargo build --workspace builds them)");
            return;
        }
    };
    let store = PrivateStore::new();
    if let Err(why) = store.probe() {
        eprintln!(
            "SKIP: buildah cannot build even a one-file scratch image in a private vfs store \
             on this machine, so the Containerfile's final stage is not built here. buildah \
             said: {why}"
        );
        return;
    }
    // The real final stage, with its COPY --from=build reading a local directory instead.
    let (from, stage) = final_stage(&containerfile());
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(ctx.path().join("out")).expect("out dir");
    for b in &bins {
        let name = b.file_name().expect("file name");
        std::fs::copy(b, ctx.path().join("out").join(name)).expect("copy binary");
    }
    let body: Vec<String> = stage
        .iter()
        .map(|i| i.replace("COPY --from=build /out/", "COPY out/"))
        .collect();
    let file = format!("FROM {from}\n{}\n", body.join("\n"));
    std::fs::write(ctx.path().join("Containerfile"), &file).expect("write");

    let tag = "localhost/ferrolb-e2e-image:test";
    let out = build_in(store.buildah(), tag, ctx.path()).expect("buildah build");
    assert!(
        out.status.success(),
        "buildah build failed:\n{file}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = inspect_in(store.buildah(), tag);
    let config = &info["OCIv1"]["config"];
    assert_eq!(config["User"], "65534:65534", "{config}");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/ferrolb-controller"])
    );
    // Only the two binaries: one layer, no base layers (scratch).
    let layers = info["OCIv1"]["rootfs"]["diff_ids"].as_array().map(Vec::len);
    assert_eq!(layers, Some(1), "{}", info["OCIv1"]["rootfs"]);
}

#[test]
fn full_multi_stage_build_when_the_builder_image_is_at_hand() {
    if !require_root_and(&["buildah"]) {
        return;
    }
    let text = containerfile();
    let builder = text
        .lines()
        .find_map(|l| l.strip_prefix("ARG RUST_IMAGE="))
        .expect("ARG RUST_IMAGE in the Containerfile")
        .trim()
        .to_owned();
    let local = Command::new("buildah")
        .args(["inspect", "--type", "image", &builder])
        .output()
        .is_ok_and(|o| o.status.success());
    let allowed = std::env::var("FERROLB_IMAGE_BUILD").is_ok_and(|v| v == "1");
    if !local && !allowed {
        eprintln!(
            "SKIP: the builder image {builder} is not in local storage and no container \
             registry is reachable here; set FERROLB_IMAGE_BUILD=1 to let buildah pull it \
             (a release build of the workspace: minutes of CPU)"
        );
        return;
    }
    assert!(program_exists("buildah"));
    let tag = format!("localhost/ferrolb-e2e-full:{}", std::process::id());
    let guard = ImageGuard(tag.clone());
    let out = build_in(Command::new("buildah"), &tag, &repo()).expect("buildah build");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = inspect_in(Command::new("buildah"), &guard.0);
    assert_eq!(info["OCIv1"]["config"]["User"], "65534:65534");
    // The size goes to docs/install.md; printed, never asserted.
    eprintln!("image {tag}: {}", info["ImageAnnotations"]);
    let size = Command::new("buildah")
        .args(["images", "--format", "{{.Size}}", &tag])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    eprintln!("image size: {size}");
}
