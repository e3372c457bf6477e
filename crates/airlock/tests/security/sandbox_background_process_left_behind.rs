//! Attack: leave a process running after the tool "exits", to keep working unsupervised (outliving the run's
//! timeout and its audit record): a background job, a `setsid` double fork, and a `nohup` job. After `airlock
//! run` returns, none of them may exist on the host. The tool's own output ("started") is the control.

use crate::common::random_alnum;
use crate::common::sandbox::*;

#[test]
fn sandbox_background_process_left_behind() {
    let programs = ["sh", "sleep", "setsid", "nohup"];
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&programs)));
    require_programs(&programs);
    // Unique durations (31337.<digits> seconds) make the processes recognisable on the host.
    let digits: String = random_alnum(40).chars().filter(char::is_ascii_digit).take(6).collect();
    let seconds = |n: u32| format!("3133{n}.{digits}1");
    let (bg, daemon, hup) = (seconds(7), seconds(8), seconds(9));

    let r = sb.run([
        "sh",
        "-c",
        &format!("sleep {bg} & (setsid sleep {daemon} > /dev/null 2>&1 &) ; nohup sleep {hup} > /dev/null 2>&1 & echo started"),
    ]);
    r.exited(0);
    assert_eq!(r.stdout(), "started\n", "{}", r.describe());
    for d in [&bg, &daemon, &hup] {
        let left = host_processes_matching(&format!("sleep {d}"));
        assert!(left.is_empty(), "a process of the run outlived it on the host: {left:?}");
    }
}
