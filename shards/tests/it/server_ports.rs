//! A second server started on ports another one holds stops at start-up with a clear
//! error (the listening sockets are bound exclusively, not shared via SO_REUSEPORT), and
//! the first one keeps serving.

use crate::common;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::cluster::{TestCluster, server_binary};

const GROUP: &str = "RaftNode00";
/// How long the second server may take to give up (it should be immediate).
const REFUSAL_WAIT: Duration = Duration::from_secs(20);

#[test]
fn a_second_server_on_the_same_ports_refuses_to_start() {
    let mut c = TestCluster::three_nodes();
    c.start(0);
    // Node 0 is up once it answers on its client port (alone it has no leader).
    let up_by = Instant::now() + Duration::from_secs(20);
    while c.metadata_of(0, GROUP).is_err() {
        assert!(
            Instant::now() < up_by,
            "node 0 never served:\n{}",
            c.log_tail(0, 4096)
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut second = Command::new(server_binary())
        .arg("server")
        .arg("-c")
        .arg(&c.nodes[0].config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the second server");
    let until = Instant::now() + REFUSAL_WAIT;
    let status = loop {
        if let Some(status) = second.try_wait().expect("poll the second server") {
            break status;
        }
        if Instant::now() > until {
            let _ = second.kill();
            let _ = second.wait();
            panic!("the second server did not refuse to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(second.stderr.as_mut().expect("piped stderr"), &mut stderr)
        .expect("read its stderr");
    assert!(!status.success(), "the second server exited 0: {stderr}");
    assert!(
        stderr.contains("already in use") && stderr.contains("is another dledger server running"),
        "the error should say the port is taken and why: {stderr}"
    );
    assert!(
        c.metadata_of(0, GROUP).is_ok(),
        "the first server stopped serving"
    );
    c.assert_running(0);
}
