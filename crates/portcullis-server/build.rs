// Bakes the git commit into the binary so `/healthz` and `portcullis version` can tell a
// stale deployment apart (runbooks.md). Outside a checkout it stays "unknown".
fn main() {
    println!("cargo:rerun-if-env-changed=PORTCULLIS_GIT_COMMIT");
    if std::env::var("PORTCULLIS_GIT_COMMIT").is_ok() {
        return;
    }
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output();
    if let Ok(out) = out
        && out.status.success()
    {
        let commit = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        println!("cargo:rustc-env=PORTCULLIS_GIT_COMMIT={commit}");
        if let Ok(head) = std::process::Command::new("git")
            .args(["rev-parse", "--git-dir"])
            .output()
        {
            let dir = String::from_utf8_lossy(&head.stdout).trim().to_owned();
            println!("cargo:rerun-if-changed={dir}/HEAD");
            println!("cargo:rerun-if-changed={dir}/refs/heads");
        }
    }
}
