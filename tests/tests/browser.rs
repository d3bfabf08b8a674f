//! The explorer page in a real browser (headless Chromium, from Debian's
//! `chromium` package) against a running two-node network: it shows the
//! tip the API reports, shows a new block within 5 s without a reload,
//! shows an address's new balance after a payment, and its search opens a
//! transaction. Screenshots go to `<target dir>/screenshots/`.

#![allow(clippy::unwrap_used)]

use chain_core::keys::PrivateKey;
use chain_core::test_utils::{easy_params, genesis, outputs_of, spend};
use chain_core::{Amount, OutPoint, Transaction};
use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::Page;
use e2e_tests::http::{json, post};
use e2e_tests::{eventually, free_id, Env};
use futures::StreamExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn chromium() -> PathBuf {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("Chromium is not installed: run scripts/setup.sh (it installs Debian's chromium)")
}

/// A headless Chromium whose pages are `width` x `height` CSS pixels
/// (`mobile`: as a phone shows them).
async fn browser(width: u32, height: u32, mobile: bool) -> Browser {
    let config = BrowserConfig::builder()
        .chrome_executable(chromium())
        .no_sandbox()
        .window_size(width, height)
        .viewport(Viewport {
            width,
            height,
            device_scale_factor: Some(if mobile { 2.0 } else { 1.0 }),
            emulating_mobile: mobile,
            is_landscape: false,
            has_touch: mobile,
        })
        .user_data_dir(std::env::temp_dir().join(format!(
            "chain-explorer-test-{}-{width}",
            std::process::id()
        )))
        .build()
        .unwrap();
    let (browser, mut handler) = Browser::launch(config).await.unwrap();
    tokio::spawn(async move { while handler.next().await.is_some() {} });
    browser
}

/// The text of the element `selector` (empty when there is none).
async fn text(page: &Page, selector: &str) -> String {
    let js = format!("(document.querySelector('{selector}') || {{}}).textContent || ''");
    page.evaluate(js)
        .await
        .ok()
        .and_then(|v| v.into_value::<String>().ok())
        .unwrap_or_default()
}

/// Polls the page until `selector`'s text is `want`, for up to `within`.
async fn shows(page: &Page, selector: &str, want: &str, within: Duration) -> bool {
    let start = Instant::now();
    loop {
        if text(page, selector).await == want {
            return true;
        }
        if start.elapsed() > within {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn screenshot(page: &Page, name: &str) {
    let dir = e2e_tests::bin("node").parent().unwrap().join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = page
        .screenshot(ScreenshotParams::builder().full_page(true).build())
        .await
        .unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Waits until each chart (name, mark, count) says it drew `count` points
/// and its SVG holds that many marks, each inside the drawing.
async fn check_charts(page: &Page, want: &[(&str, &str, usize)], within: Duration) {
    for (name, mark, count) in want {
        let js = format!(
            "(() => {{ const f = document.querySelector('[data-chart=\"{name}\"]');
              if (!f) return -1;
              const svg = f.querySelector('svg');
              if (!svg) return -2;
              const box = svg.getBoundingClientRect();
              const marks = [...svg.querySelectorAll('{mark}')].filter((m) => {{
                const r = m.getBoundingClientRect();
                return r.width > 0 && r.height > 0 && r.left >= box.left - 1 && r.right <= box.right + 1
                  && r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
              }});
              return Number(f.dataset.points) === marks.length ? marks.length : -3; }})()"
        );
        let start = Instant::now();
        let mut got = -9;
        while start.elapsed() < within {
            got = page
                .evaluate(js.as_str())
                .await
                .ok()
                .and_then(|v| v.into_value::<i64>().ok())
                .unwrap_or(-9);
            if got == *count as i64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(got, *count as i64, "chart {name}: drawn {mark}s");
    }
}

fn first_coin(tx: &Transaction, pkh: chain_core::PubkeyHash) -> Vec<(OutPoint, chain_core::TxOut)> {
    outputs_of(tx)
        .into_iter()
        .filter(|c| c.1.pubkey_hash == pkh)
        .take(1)
        .collect()
}

#[test]
fn the_explorer_follows_the_chain_live_in_a_real_browser() {
    let env = Env::new();
    let (a, b) = (free_id(), free_id());
    let key = PrivateKey::generate();
    let me = key.public_key().pubkey_hash();
    let g = genesis(&easy_params(), me);
    env.store_chain(&a, std::slice::from_ref(&g));
    env.store_chain(&b, std::slice::from_ref(&g));
    env.wallet(&a, "w1");
    let w2 = env.wallet(&b, "w2");
    let node_a = env.start_node(&a, &["-minter", "w1"]);
    let _node_b = env.start_node(&b, &["-dest", &node_a.addr]);
    let base = node_a.http.clone().unwrap();
    let api = format!("{base}/api");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut wide = rt.block_on(browser(1280, 900, false));
    let home = rt.block_on(wide.new_page(format!("{base}/"))).unwrap();
    // 1. The tip height the API reports.
    let reported = json(&format!("{api}/status"), 200)["tip"]["height"].to_string();
    let ten = Duration::from_secs(10);
    assert!(
        rt.block_on(shows(&home, "#tip-height", &reported, ten)),
        "the page does not show the tip height {reported}"
    );
    let addr_page = rt
        .block_on(wide.new_page(format!("{base}/#/address/{w2}")))
        .unwrap();
    assert!(rt.block_on(shows(&addr_page, "#balance", "0", ten)));

    // 2. Two payments; node A mints them into block 1.
    let w2_pkh = chain_core::Address::parse(&w2).unwrap().pubkey_hash();
    let p1 = spend(
        &key,
        &outputs_of(&g.transactions[0]),
        w2_pkh,
        Amount(5),
        Amount(1),
    );
    let p2 = spend(&key, &first_coin(&p1, me), w2_pkh, Amount(2), Amount(1));
    for p in [&p1, &p2] {
        let (st, body) = post(&format!("{api}/tx"), &hex::encode(p.encode()));
        assert_eq!(st, 200, "{body}");
    }
    eventually(Duration::from_secs(60), "the API to report block 1", || {
        (json(&format!("{api}/blocks/tip/height"), 200) == 1).then_some(())
    });
    // Both the status bar and the newest row of the block list, within 5 s.
    let five = Duration::from_secs(5);
    assert!(
        rt.block_on(async {
            shows(&home, "#blocks tbody tr:first-child td", "1", five).await
                && shows(&home, "#tip-height", "1", five).await
        }),
        "the page did not show block 1 within 5 s of the API"
    );
    rt.block_on(screenshot(&home, "explorer-home"));

    // 3. The address page shows the new balance, also without a reload.
    assert!(
        rt.block_on(shows(&addr_page, "#balance", "7", ten)),
        "the address page did not show the new balance"
    );
    rt.block_on(screenshot(&addr_page, "explorer-address"));

    // 4. Searching a txid opens its page.
    let txid = p1.txid().to_string();
    rt.block_on(async {
        // Input goes to the tab in front.
        home.bring_to_front().await.unwrap();
        let q = home.find_element("#q").await.unwrap();
        q.click().await.unwrap();
        q.type_str(&txid).await.unwrap();
        q.press_key("Enter").await.unwrap();
    });
    assert!(
        rt.block_on(shows(&home, "#txid", &txid, ten)),
        "searching a txid did not open its page"
    );
    let url = rt.block_on(home.url()).unwrap().unwrap_or_default();
    assert!(url.ends_with(&format!("#/tx/{txid}")), "{url}");
    rt.block_on(screenshot(&home, "explorer-tx"));

    // 5. The charts: one more payment waits in the mempool (the minter
    // needs two), so every chart has points to draw.
    let p3 = spend(&key, &first_coin(&p2, me), w2_pkh, Amount(1), Amount(2));
    let (st, body) = post(&format!("{api}/tx"), &hex::encode(p3.encode()));
    assert_eq!(st, 200, "{body}");
    let charts = rt
        .block_on(wide.new_page(format!("{base}/#/charts")))
        .unwrap();
    // Blocks 0 and 1: one interval, two difficulties and transaction
    // counts; one fee band.
    let want = [
        ("intervals", "circle", 1),
        ("difficulty", "circle", 2),
        ("transactions", "circle", 2),
        ("fees", "rect", 1),
    ];
    rt.block_on(check_charts(&charts, &want, ten));
    rt.block_on(screenshot(&charts, "explorer-charts"));
    rt.block_on(async { wide.close().await.ok() });

    // The same page at a phone's width: readable, no sideways scrolling.
    let mut narrow = rt.block_on(browser(390, 844, true));
    let phone = rt.block_on(narrow.new_page(format!("{base}/"))).unwrap();
    assert!(rt.block_on(shows(&phone, "#tip-height", "1", ten)));
    let overflow = rt
        .block_on(phone.evaluate(
            "document.documentElement.scrollWidth > document.documentElement.clientWidth",
        ))
        .unwrap()
        .into_value::<bool>()
        .unwrap();
    assert!(!overflow, "the page scrolls sideways at a phone's width");
    rt.block_on(screenshot(&phone, "explorer-phone"));
    let phone_charts = rt
        .block_on(narrow.new_page(format!("{base}/#/charts")))
        .unwrap();
    rt.block_on(check_charts(&phone_charts, &want, ten));
    let overflow = rt
        .block_on(phone_charts.evaluate(
            "document.documentElement.scrollWidth > document.documentElement.clientWidth",
        ))
        .unwrap()
        .into_value::<bool>()
        .unwrap();
    assert!(!overflow, "the charts scroll sideways at a phone's width");
    rt.block_on(screenshot(&phone_charts, "explorer-charts-phone"));
    rt.block_on(async { narrow.close().await.ok() });
}
