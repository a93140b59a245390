//! The local runtime lays out loopback addresses and a proxy per directed
//! link; a grudge cuts exactly the links it names, one way.

use harness::node::{Grudge, Runtime};
use harness::runtime::local::LocalRuntime;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grudges_cut_exactly_the_named_links() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = LocalRuntime::start(3, dir.path().to_owned(), "/bin/true".into(), "test-local")
        .await
        .expect("start");
    assert_eq!(rt.nodes(), ["n1", "n2", "n3"]);
    let a1 = rt.addrs("n1").expect("addrs");
    assert!(a1.client.ip().is_loopback());
    assert_eq!(a1.peers.len(), 2);
    // n1 dials n2 through a proxy, not directly.
    assert_ne!(a1.peers["n2"], rt.addrs("n2").expect("addrs").peer_listen);

    let mut g = Grudge::none();
    g.0.entry("n2".into()).or_default().insert("n1".into());
    rt.set_grudge(&g).await.expect("grudge");
    assert!(rt.is_cut("n1", "n2"));
    assert!(!rt.is_cut("n2", "n1"), "one-way partition");
    assert!(!rt.is_cut("n1", "n3"));

    let halves = Grudge::from_components(&[vec!["n1".into()], vec!["n2".into(), "n3".into()]]);
    rt.set_grudge(&halves).await.expect("grudge");
    for (a, b, cut) in
        [("n1", "n2", true), ("n2", "n1", true), ("n3", "n1", true), ("n2", "n3", false)]
    {
        assert_eq!(rt.is_cut(a, b), cut, "{a}->{b}");
    }
    rt.set_grudge(&Grudge::none()).await.expect("heal");
    assert!(!rt.is_cut("n1", "n2") && !rt.is_cut("n3", "n1"));
    rt.teardown().await.expect("teardown");
}
