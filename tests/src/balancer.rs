//! nginx as the HTTP load balancer in front of several `updater-server`
//! nodes, as docs/scale.md deploys them: round robin over the nodes, a
//! request that cannot reach a node (refused, reset before an answer) goes
//! to the next one.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `nginx` package installs the binary (and other places).
const NGINX: [&str; 3] = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"];

/// A running nginx balancing over a fixed set of upstream nodes; killed on
/// drop.
#[derive(Debug)]
pub struct Balancer {
    child: Child,
    dir: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Balancer {
    /// Starts nginx with its configuration and logs in `dir`, forwarding to
    /// `nodes` (each `host:port`).
    pub fn start(dir: &Path, nodes: &[String]) -> Self {
        let nginx = NGINX
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or_else(|| panic!("nginx is missing: apt-get install -y nginx"));
        fs::create_dir_all(dir).expect("balancer dir");
        // A port another process takes between our probe and nginx's bind
        // makes nginx exit: try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let conf = dir.join("nginx.conf");
            fs::write(&conf, config(dir, port, nodes)).expect("nginx.conf");
            let log = dir.join("error.log");
            let mut child = Command::new(nginx)
                .arg("-p")
                .arg(dir)
                .arg("-c")
                .arg(&conf)
                .arg("-e")
                .arg(&log)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start nginx ({e}): apt-get install -y nginx"));
            let addr = format!("127.0.0.1:{port}");
            let started = Instant::now();
            // nginx prints nothing when it is ready: wait until the port accepts.
            loop {
                if TcpStream::connect(&addr).is_ok() {
                    return Self {
                        child,
                        dir: dir.to_owned(),
                        base: format!("http://{addr}"),
                    };
                }
                if let Ok(Some(status)) = child.try_wait() {
                    last_error =
                        format!("{status}: {}", fs::read_to_string(&log).unwrap_or_default());
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "nginx did not listen on {addr}"
                );
                std::thread::park_timeout(Duration::from_millis(20));
            }
        }
        panic!("nginx exited: {last_error}");
    }

    /// nginx's error log (upstreams it gave up on show there).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One worker; no buffering to disk (the workers may not write the test's
/// directory when nginx runs as root); a node that refuses or drops a
/// connection is skipped for two seconds, and a request it did not answer
/// goes to the next node when nginx may resend it (not a POST it already
/// sent: the agent retries those itself, as behind any balancer).
fn config(dir: &Path, port: u16, nodes: &[String]) -> String {
    let d = dir.display();
    let upstreams: String = nodes
        .iter()
        .map(|n| format!("    server {n} max_fails=1 fail_timeout=2s;\n"))
        .collect();
    format!(
        "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 512; }}\n\
         http {{\n  access_log off;\n\
           client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           client_max_body_size 64m;\n\
           upstream nodes {{\n{upstreams}    keepalive 16;\n  }}\n\
           server {{\n    listen 127.0.0.1:{port};\n    location / {{\n\
               proxy_pass http://nodes;\n      proxy_http_version 1.1;\n\
               proxy_set_header Connection \"\";\n      proxy_set_header Host $http_host;\n\
               proxy_buffering off;\n      proxy_request_buffering off;\n\
               proxy_connect_timeout 2s;\n      proxy_read_timeout 60s;\n\
               proxy_next_upstream error timeout http_502 http_503;\n    }}\n  }}\n}}\n"
    )
}
