"""nsqadmin's web UI in a real browser (Debian's chromium driven by Playwright) against a
live cluster with traffic: every page, every action with its confirmation, the effects in
the cluster, live refresh, and screenshots of the main pages.

Screenshots go to ``tests/browser-screenshots/`` (or ``$NSQADMIN_SCREENSHOT_DIR``).
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
import time

import pytest

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "browser"))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from nsqadmin_cluster import (Cluster, Consumer, Sink, nsqd_topic, start_admin,  # noqa: E402
                              wait_for)

SHOTS = os.environ.get("NSQADMIN_SCREENSHOT_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "browser-screenshots")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOPIC = "orders"


# ---------------------------------------------------------------------------------------
# fixtures: cluster with traffic, nsqadmin, browser
# ---------------------------------------------------------------------------------------
class Traffic:
    """Publishes to both nsqd while consumers on two channels receive (and FIN)."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.stop_flag = False
        self.published = 0
        for i in range(2):
            cluster.create_channel(i, TOPIC, "billing")
            cluster.create_channel(i, TOPIC, "audit")
        cluster.wait_producers(TOPIC, 2)
        # billing: healthy consumers; audit: a consumer stuck at RDY 0 (backoff)
        self.consumers = [
            Consumer(cluster.nsqds[0], TOPIC, "billing", rdy=10, client_id="billing-1",
                     hostname="app-1.example"),
            Consumer(cluster.nsqds[1], TOPIC, "billing", rdy=10, client_id="billing-2",
                     hostname="app-2.example", sample_rate=50),
            Consumer(cluster.nsqds[0], TOPIC, "audit", rdy=0, client_id="auditor",
                     hostname="audit-1.example"),
        ]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        i = 0
        while not self.stop_flag:
            try:
                self.cluster.pub(i % 2, TOPIC, b'{"order":%d}' % i, n=3)
                self.published += 3
            except Exception:  # noqa: BLE001 - the cluster may be stopping
                pass
            i += 1
            time.sleep(0.15)

    def close(self) -> None:
        self.stop_flag = True
        self.thread.join(2)
        for c in self.consumers:
            c.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("nsqadmin-browser"), n_nsqd=2)
    yield c
    c.stop()


@pytest.fixture(scope="module")
def traffic(cluster):
    t = Traffic(cluster)
    wait_for(lambda: t.consumers[0].received > 0 and t.consumers[1].received > 0,
             what="consumers receiving")
    yield t
    t.close()


@pytest.fixture(scope="module")
def sink():
    s = Sink()
    yield s
    s.close()


@pytest.fixture(scope="module")
def admin(cluster, sink):
    a = start_admin(f"--lookupd-http-address={cluster.lookupd_http}",
                    f"--notification-http-endpoint={sink.url}/notify",
                    env={"NSQADMIN_HISTORY_INTERVAL": "0.5"})
    yield a
    a.stop()


@pytest.fixture(scope="module")
def browser_ctx():
    user_data = tempfile.mkdtemp(prefix="nsqadmin-chromium-")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            user_data, executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1440, "height": 900})
        yield ctx
        ctx.close()


@pytest.fixture
def page(browser_ctx):
    pg = browser_ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.add_init_script("localStorage.setItem('nsqadmin_refresh', '1000');")
    yield pg
    pg.close()
    assert not errors, errors


def base(admin) -> str:
    return f"http://127.0.0.1:{admin.http_port}"


def goto(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#app[data-loaded]")


def shot(page, name: str) -> None:
    os.makedirs(SHOTS, exist_ok=True)
    path = os.path.join(SHOTS, f"{name}.png")
    page.screenshot(path=path, full_page=True)
    print(f"screenshot: {path}")


def confirm(page, expect_text: str | None = None) -> None:
    """Confirm the dialog and wait until the action's request has completed."""
    modal = page.locator("#modal")
    expect(modal).to_be_visible()
    if expect_text:
        expect(page.locator("#modal-text")).to_contain_text(expect_text)
    done = int(page.evaluate("document.body.getAttribute('data-actions-done') || '0'"))
    page.click("#modal-confirm")
    expect(modal).to_be_hidden()
    expect(page.locator("body")).to_have_attribute("data-actions-done", str(done + 1))


def cancel(page) -> None:
    expect(page.locator("#modal")).to_be_visible()
    page.click("#modal-cancel")
    expect(page.locator("#modal")).to_be_hidden()


def mark_no_reload(page) -> None:
    page.evaluate("window.__noReload = 42")


def assert_no_reload(page) -> None:
    assert page.evaluate("window.__noReload") == 42, "the page was reloaded"


def fresh_topic(cluster, name: str, channels=("ch",), nodes=(0, 1), msgs: int = 0) -> str:
    for i in nodes:
        for ch in channels:
            cluster.create_channel(i, name, ch)
        if msgs:
            cluster.pub(i, name, b"m", n=msgs)
    cluster.wait_producers(name, len(nodes))
    return name


# ---------------------------------------------------------------------------------------
# pages
# ---------------------------------------------------------------------------------------
def test_topics_page(page, admin, traffic):
    goto(page, base(admin) + "/")
    expect(page.locator("#topics-table a.topic-link", has_text=TOPIC)).to_be_visible()
    expect(page.locator(".mainnav a.active")).to_have_text("Streams")
    expect(page.locator("[data-chart=cluster-rate] svg polyline").first).to_be_visible(timeout=15000)
    # the rate column fills in once nsqadmin has two samples
    expect(page.locator(f"#topics-table tr[data-topic={TOPIC}] td").nth(3)).to_contain_text("/s", timeout=15000)
    page.wait_for_timeout(1500)
    shot(page, "topics")


def test_topic_page(page, admin, cluster, traffic):
    goto(page, base(admin) + f"/topics/{TOPIC}")
    rows = page.locator("#topic-nodes tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.last).to_contain_text("Total")
    for d in cluster.nsqds:
        expect(page.locator(f"#topic-nodes tr[data-node='127.0.0.1:{d.http_port}'] a")).to_have_attribute(
            "href", f"/nodes/127.0.0.1:{d.http_port}")
    expect(page.locator("#topic-channels a.channel-link")).to_have_text(["audit", "billing"])
    # totals agree with the cluster (within the live traffic's drift)
    total = int(rows.last.locator("td").nth(3).inner_text().replace(",", ""))
    assert total > 0
    for label in ("Empty Queue", "Delete Topic", "Pause Topic"):
        expect(page.get_by_role("button", name=label)).to_be_visible()
    expect(page.locator("[data-chart=topic-depth] svg")).to_be_visible()
    page.wait_for_timeout(1500)
    shot(page, "topic")


def test_channel_page_and_diagnosis(page, admin, cluster, traffic):
    goto(page, base(admin) + f"/topics/{TOPIC}/billing")
    expect(page.locator("#channel-nodes tbody tr")).to_have_count(3)
    clients = page.locator("#clients-table tbody tr")
    expect(clients).to_have_count(2)
    first = clients.first
    expect(first).to_contain_text("app-1.example")
    expect(first).to_contain_text("billing-1")
    expect(first).to_contain_text("nsqadmin-test/1.0")
    expect(clients.nth(1)).to_contain_text("sampled 50%")
    expect(first.locator(".diagnosis")).not_to_have_class(re.compile("diag-bad"))
    page.wait_for_timeout(1000)
    shot(page, "channel")

    goto(page, base(admin) + f"/topics/{TOPIC}/audit")
    diag = page.locator("#clients-table tbody tr .diagnosis")
    expect(diag).to_have_count(1)
    expect(diag).to_contain_text("backoff: RDY 0 with nothing in flight")
    expect(diag).to_have_class(re.compile("diag-bad"))
    shot(page, "channel-audit-diagnosis")


def test_nodes_and_node_pages(page, admin, cluster, traffic):
    goto(page, base(admin) + "/nodes")
    expect(page.locator("h2")).to_have_text("NSQd Nodes (2)")
    rows = page.locator("#nodes-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("1.3.0")
    expect(rows.first.locator("td").nth(5)).to_have_text("1")  # one lookupd connection
    expect(rows.first.locator("a.label", has_text=TOPIC)).to_be_visible()
    shot(page, "nodes")
    node = f"127.0.0.1:{cluster.nsqds[0].http_port}"
    mark_no_reload(page)
    page.click(f"#nodes-table tr[data-node='{node}'] a.node-link")
    expect(page).to_have_url(base(admin) + f"/nodes/{node}")
    page.wait_for_selector("#node-topics")
    assert_no_reload(page)
    expect(page.locator("#node-clients")).to_have_text("2")  # billing-1 and auditor
    expect(page.locator(f"#node-topics-table tr.topic-row[data-topic={TOPIC}]")).to_be_visible()
    expect(page.locator("#node-topics-table .diagnosis", has_text="backoff")).to_be_visible()
    shot(page, "node")


def test_counter_page_live(page, admin, traffic):
    goto(page, base(admin) + "/counter")
    mark_no_reload(page)
    total = page.locator("#counter-total")
    expect(total).to_have_text(re.compile(r"^[\d,]+$"))
    first = int(total.inner_text().replace(",", ""))
    wait_for(lambda: int(total.inner_text().replace(",", "")) > first, timeout=15,
             what="counter to grow")
    assert_no_reload(page)
    expect(page.locator("#counter-rate")).not_to_have_text("–")
    shot(page, "counter")


def test_live_refresh_without_reload(page, admin, cluster, traffic):
    goto(page, base(admin) + f"/topics/{TOPIC}")
    mark_no_reload(page)
    cell = page.locator("#topic-nodes tr.total td").nth(3)
    before = int(cell.inner_text().replace(",", ""))
    wait_for(lambda: int(cell.inner_text().replace(",", "")) > before + 5, timeout=15,
             what="topic message count to update")
    assert_no_reload(page)


def test_navigation_is_client_side(page, admin, traffic):
    goto(page, base(admin) + "/")
    mark_no_reload(page)
    page.click(f"#topics-table a.topic-link:text-is('{TOPIC}')")
    expect(page).to_have_url(base(admin) + f"/topics/{TOPIC}")
    page.click("#topic-channels a.channel-link:text-is('billing')")
    expect(page).to_have_url(base(admin) + f"/topics/{TOPIC}/billing")
    page.click(".mainnav a:text-is('Nodes')")
    expect(page.locator("h2")).to_have_text("NSQd Nodes (2)")
    page.go_back()
    expect(page.locator("#clients-table")).to_be_visible()
    assert_no_reload(page)


def test_lookup_page_create_and_delete_inactive(page, admin, cluster, sink, traffic):
    goto(page, base(admin) + "/lookup")
    expect(page.locator("ul.hosts")).to_contain_text(cluster.lookupd_http)
    page.fill("#create-topic", "fresh_topic")
    page.fill("#create-channel", "fresh_channel")
    page.click("#create-submit")
    confirm(page, 'Create topic "fresh_topic" and channel "fresh_channel"')
    expect(page.locator(".banner.success")).to_contain_text("Created fresh_topic/fresh_channel")
    assert "fresh_topic" in cluster.lookupd_json("/topics")["topics"]
    assert cluster.lookupd_json("/channels?topic=fresh_topic")["channels"] == ["fresh_channel"]
    expect(page.locator("#lookupd-topics a", has_text=TOPIC)).to_be_visible()
    expect(page.locator("#lookupd-topics a.label-inactive", has_text="fresh_topic")).to_be_visible()
    item = page.locator("#inactive-topics li.inactive-topic[data-topic=fresh_topic]")
    expect(item).to_be_visible()
    expect(item.locator("li[data-channel=fresh_channel]")).to_be_visible()
    shot(page, "lookup")
    # cancel keeps it, confirm deletes: channel first, then the topic
    item.locator("button.delete-inactive-channel").click()
    cancel(page)
    assert cluster.lookupd_json("/channels?topic=fresh_topic")["channels"] == ["fresh_channel"]
    item.locator("button.delete-inactive-channel").click()
    confirm(page, 'Delete channel "fresh_channel"')
    expect(item.locator("li[data-channel=fresh_channel]")).to_have_count(0)
    assert cluster.lookupd_json("/channels?topic=fresh_topic")["channels"] == []
    item.locator("button.delete-inactive-topic").click()
    confirm(page, 'Delete topic "fresh_topic"')
    expect(page.locator("#inactive-topics li[data-topic=fresh_topic]")).to_have_count(0)
    assert "fresh_topic" not in cluster.lookupd_json("/topics")["topics"]
    wait_for(lambda: len([r for r in sink.requests if b"fresh_topic" in r["body"]]) >= 4,
             what="create/delete notifications")


# ---------------------------------------------------------------------------------------
# actions with confirmation, checked in the cluster
# ---------------------------------------------------------------------------------------
def test_topic_pause_unpause_empty(page, admin, cluster):
    t = fresh_topic(cluster, "ui_topic_actions")
    goto(page, base(admin) + f"/topics/{t}")
    page.click("[data-action=pause-topic]")
    cancel(page)
    assert nsqd_topic(cluster.nsqds[0], t)["paused"] is False
    page.click("[data-action=pause-topic]")
    confirm(page, f'Pause topic "{t}"')
    expect(page.locator(".banner.success")).to_contain_text(f"Topic {t} paused")
    assert all(nsqd_topic(d, t)["paused"] for d in cluster.nsqds)
    expect(page.locator(".page-head .label-paused")).to_be_visible()
    expect(page.locator("[data-action=unpause-topic]")).to_have_text("UnPause Topic")
    shot(page, "topic-paused")
    # messages now wait in the topic; empty them
    cluster.pub(0, t, n=5)
    expect(page.locator("#topic-nodes tr.total td").nth(1)).to_have_text("5", timeout=10000)
    page.click("[data-action=empty-topic]")
    confirm(page, "Empty the queue")
    wait_for(lambda: nsqd_topic(cluster.nsqds[0], t)["depth"] == 0, what="topic emptied")
    expect(page.locator("#topic-nodes tr.total td").nth(1)).to_have_text("0")
    page.click("[data-action=unpause-topic]")
    confirm(page, f'Unpause topic "{t}"')
    expect(page.locator("[data-action=pause-topic]")).to_be_visible()
    assert not any(nsqd_topic(d, t)["paused"] for d in cluster.nsqds)


def test_channel_actions(page, admin, cluster):
    t = fresh_topic(cluster, "ui_channel_actions", channels=("work",), msgs=4)
    goto(page, base(admin) + f"/topics/{t}/work")
    expect(page.locator("#channel-nodes tr.total td").nth(1)).to_have_text("8")
    page.click("[data-action=pause-channel]")
    confirm(page, 'Pause channel "work"')
    assert all(d.channel_stats(t, "work")["paused"] for d in cluster.nsqds)
    expect(page.locator("[data-action=unpause-channel]")).to_be_visible()
    c = Consumer(cluster.nsqds[0], t, "work", rdy=5, client_id="paused-reader")
    try:
        diag = page.locator("#clients-table .diagnosis")
        expect(diag).to_contain_text("channel is paused", timeout=10000)
        shot(page, "channel-paused-diagnosis")
        page.click("[data-action=unpause-channel]")
        confirm(page, 'Unpause channel "work"')
        assert not any(d.channel_stats(t, "work")["paused"] for d in cluster.nsqds)
        wait_for(lambda: c.received == 4, what="delivery after unpause")
    finally:
        c.close()
    page.click("[data-action=empty-channel]")
    confirm(page, 'Empty channel "work"')
    wait_for(lambda: all(d.channel_stats(t, "work")["depth"] == 0 for d in cluster.nsqds),
             what="channel emptied")
    expect(page.locator("#channel-nodes tr.total td").nth(1)).to_have_text("0")
    page.click("[data-action=delete-channel]")
    cancel(page)
    assert cluster.nsqds[0].channel_stats(t, "work") is not None
    page.click("[data-action=delete-channel]")
    confirm(page, 'Delete channel "work"')
    expect(page).to_have_url(base(admin) + f"/topics/{t}")
    assert all(d.channel_stats(t, "work") is None for d in cluster.nsqds)
    expect(page.locator(".notice", has_text="No channels exist for this topic")).to_be_visible()


def test_tombstone_and_delete_topic(page, admin, cluster, sink):
    t = fresh_topic(cluster, "ui_tombstone")
    node = f"127.0.0.1:{cluster.nsqds[0].http_port}"
    goto(page, base(admin) + f"/topics/{t}")
    page.click(f"#topic-nodes tr[data-node='{node}'] button.tombstone")
    confirm(page, f"Tombstone node {node}")
    wait_for(lambda: nsqd_topic(cluster.nsqds[0], t) is None, what="topic deleted on node 0")
    assert nsqd_topic(cluster.nsqds[1], t) is not None
    expect(page.locator("#topic-nodes tbody tr")).to_have_count(2)  # one node + total
    page.click("[data-action=delete-topic]")
    confirm(page, f'Delete topic "{t}"')
    expect(page).to_have_url(base(admin) + "/topics")
    assert nsqd_topic(cluster.nsqds[1], t) is None
    assert t not in cluster.lookupd_json("/topics")["topics"]
    expect(page.locator(f"#topics-table tr[data-topic={t}]")).to_have_count(0)
    wait_for(lambda: {"tombstone_topic_producer", "delete_topic"} <= {
        __import__("json").loads(r["body"])["action"] for r in sink.requests
        if t.encode() in r["body"]}, what="notifications")


def test_tombstone_from_node_page(page, admin, cluster):
    t = fresh_topic(cluster, "ui_node_tombstone", nodes=(1,))
    node = f"127.0.0.1:{cluster.nsqds[1].http_port}"
    goto(page, base(admin) + f"/nodes/{node}")
    row = page.locator(f"#node-topics-table tr.topic-row[data-topic={t}]")
    row.locator("button.tombstone").click()
    confirm(page, f'for topic "{t}"')
    wait_for(lambda: nsqd_topic(cluster.nsqds[1], t) is None, what="topic deleted on node 1")
    expect(row).to_have_count(0)


def test_max_in_flight_below_node_count(page, admin, cluster):
    t = fresh_topic(cluster, "ui_mif", channels=("slow",), msgs=3)
    # one consumer process (same client id and host) with max-in-flight 1 over two nodes
    conns = [Consumer(cluster.nsqds[0], t, "slow", rdy=1, client_id="mif", hostname="mif-host",
                      fin=False),
             Consumer(cluster.nsqds[1], t, "slow", rdy=0, client_id="mif", hostname="mif-host",
                      fin=False)]
    try:
        goto(page, base(admin) + f"/topics/{t}/slow")
        row = page.locator(f"#clients-table tr[data-node='127.0.0.1:{cluster.nsqds[1].http_port}']")
        expect(row.locator(".diagnosis")).to_contain_text("max-in-flight below the node count")
        other = page.locator(f"#clients-table tr[data-node='127.0.0.1:{cluster.nsqds[0].http_port}']")
        expect(other.locator(".diagnosis")).to_contain_text("saturated")
        shot(page, "channel-max-in-flight-diagnosis")
    finally:
        for c in conns:
            c.close()


# ---------------------------------------------------------------------------------------
# ACL, base path, warnings
# ---------------------------------------------------------------------------------------
def test_non_admin_sees_no_actions(browser_ctx, cluster, traffic):
    a = start_admin(f"--lookupd-http-address={cluster.lookupd_http}", "--admin-user=alice")
    pg = browser_ctx.new_page()
    try:
        goto(pg, base(a) + f"/topics/{TOPIC}")
        expect(pg.locator("#topic-nodes tbody tr")).to_have_count(3)
        expect(pg.locator("[data-action]")).to_have_count(0)
        goto(pg, base(a) + "/lookup")
        expect(pg.locator("#create-form")).to_have_count(0)
        pg.set_extra_http_headers({"X-Forwarded-User": "alice"})
        goto(pg, base(a) + f"/topics/{TOPIC}")
        expect(pg.locator("[data-action=pause-topic]")).to_be_visible()
    finally:
        pg.close()
        a.stop()


def test_base_path(browser_ctx, cluster, traffic):
    a = start_admin(f"--lookupd-http-address={cluster.lookupd_http}", "--base-path=/nsq/admin")
    pg = browser_ctx.new_page()
    try:
        goto(pg, base(a) + "/nsq/admin")
        pg.click(f"#topics-table a.topic-link:text-is('{TOPIC}')")
        expect(pg).to_have_url(base(a) + f"/nsq/admin/topics/{TOPIC}")
        expect(pg.locator("#topic-nodes tbody tr")).to_have_count(3)
        pg.click(".mainnav a:text-is('Counter')")
        expect(pg).to_have_url(base(a) + "/nsq/admin/counter")
        expect(pg.locator("#counter-total")).to_have_text(re.compile(r"^[\d,]+$"))
    finally:
        pg.close()
        a.stop()


def test_partial_failure_banner(browser_ctx, cluster, traffic):
    a = start_admin(f"--lookupd-http-address={cluster.lookupd_http}",
                    "--lookupd-http-address=127.0.0.1:1")
    pg = browser_ctx.new_page()
    try:
        goto(pg, base(a) + "/nodes")
        expect(pg.locator(".banner.warning")).to_contain_text(
            'WARNING: Get "http://127.0.0.1:1/nodes"')
        expect(pg.locator("#nodes-table tbody tr")).to_have_count(2)
        shot(pg, "nodes-warning")
    finally:
        pg.close()
        a.stop()


def test_nsqd_mode_lookup_page(browser_ctx, cluster):
    a = start_admin(f"--nsqd-http-address={cluster.node(0)}")
    pg = browser_ctx.new_page()
    try:
        goto(pg, base(a) + "/lookup")
        expect(pg.locator(".notice")).to_have_text("nsqadmin is not configured with nsqlookupd hosts")
        goto(pg, base(a) + "/nodes")
        expect(pg.locator("#nodes-table tbody tr")).to_have_count(1)
    finally:
        pg.close()
        a.stop()


# ---------------------------------------------------------------------------------------
# graphite (through nsqadmin's /render proxy)
# ---------------------------------------------------------------------------------------
def _png_1x1() -> bytes:
    import struct
    import zlib

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x2f\x6f\xdb")) + chunk(b"IEND", b""))


def _graphite(rec):
    import json as _json
    if "format=json" in rec["path"]:
        return 200, "application/json", _json.dumps(
            [{"target": "t", "datapoints": [[600.0, 1], [None, 2]]}]).encode()
    return 200, "image/png", _png_1x1()


def test_graphite_graphs_through_proxy(browser_ctx, cluster, traffic):
    g = Sink(_graphite)
    a = start_admin(f"--lookupd-http-address={cluster.lookupd_http}",
                    f"--graphite-url={g.url}", "--proxy-graphite")
    pg = browser_ctx.new_page()
    try:
        goto(pg, base(a) + "/")
        row = pg.locator(f"#topics-table tr[data-topic={TOPIC}]")
        img = row.locator("img.graphite").first
        expect(img).to_have_attribute("src", re.compile(r"^/render\?target="))
        expect(row.locator("td[data-rate]")).to_have_text("10.00")  # 600 / 60s
        wait_for(lambda: any(r["path"].startswith("/render?target=summarize") for r in g.requests),
                 what="graph image fetched through the proxy")
        paths = [urllib_unquote(r["path"]) for r in g.requests]
        assert any(f"sumSeries(stats.gauges.nsq.*.topic.{TOPIC}.depth)" in p for p in paths)
        assert any(f"sumSeries(stats.counters.nsq.*.topic.{TOPIC}.message_count.count)" in p
                   for p in paths)
        expect(pg.locator("#graph-interval")).to_have_value("2h")
        pg.select_option("#graph-interval", "24h")
        wait_for(lambda: any("from=-24h" in r["path"] for r in g.requests), what="24h graphs")
        goto(pg, base(a) + f"/topics/{TOPIC}/billing")
        expect(pg.locator(".graphite-graph[data-metric=in_flight_count] img")).to_have_attribute(
            "src", re.compile(r"from=-24h"))
        shot(pg, "channel-graphite")
        goto(pg, base(a) + f"/topics/{TOPIC}?t=off")
        expect(pg.locator("#graph-interval")).to_have_value("off")
        expect(pg.locator("img.graphite")).to_have_count(0)
        expect(pg.locator("#topic-nodes tr.total td[data-rate]")).to_have_text("10.00")
        shot(pg, "topic-graphite")
    finally:
        pg.close()
        a.stop()
        g.close()


def urllib_unquote(s: str) -> str:
    from urllib.parse import unquote_plus
    return unquote_plus(s)
