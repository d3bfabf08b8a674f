// The explorer: reads the node's own API and follows its event stream.
// Views live after '#': #/, #/block/HASH, #/tx/TXID, #/address/ADDR,
// #/mempool, #/peers, #/charts.
"use strict";

const $ = (id) => document.getElementById(id);
const view = $("view");

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}
const link = (kind, id, text) =>
  `<a class="hash" href="#/${kind}/${encodeURIComponent(id)}">${esc(text ?? id)}</a>`;
const short = (h) => (h.length > 20 ? h.slice(0, 10) + "…" + h.slice(-8) : h);
const when = (t) => new Date(t * 1000).toLocaleString();
const ago = (t) => {
  const s = Math.max(0, Math.round(Date.now() / 1000 - t));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
};

async function api(path) {
  const r = await fetch("/api/" + path, { headers: { Accept: "application/json" } });
  const type = r.headers.get("content-type") || "";
  const body = type.includes("json") ? await r.json() : await r.text();
  if (!r.ok) throw new Error((body && body.error) || r.status + " " + r.statusText);
  return body;
}

function showError(e) {
  view.innerHTML = `<p class="error">${esc(e.message || e)}</p>`;
}

async function refreshStatus() {
  try {
    const s = await api("status");
    $("tip-height").textContent = s.tip ? s.tip.height : "–";
    const sync = s.sync.state === "syncing"
      ? `syncing ${Math.floor(s.sync.progress * 100)}%` : s.sync.state;
    $("sync-state").textContent = sync;
    $("sync-state").className = s.sync.state === "synced" ? "ok" : "warn";
    $("peer-count").textContent = s.peer_count;
    const reach = s.reachability || {};
    const via = (reach.external || []).concat(reach.relayed ? [reach.relayed] : []);
    $("reachability").textContent = reach.state === "public" ? "yes"
      : reach.state === "private" ? (reach.relayed ? "via a relay" : "no") : "unknown";
    $("reachability").title = via.join("\n");
    $("mempool-count").textContent = s.mempool.count;
    if (s.tip) {
      $("tip-hash").textContent = short(s.tip.hash);
      $("tip-hash").href = "#/block/" + s.tip.hash;
    }
  } catch (e) {
    $("sync-state").textContent = "unreachable";
  }
}

function blockRow(b, fresh) {
  return `<tr${fresh ? ' class="new"' : ""} data-height="${b.height}">
    <td class="num">${b.height}</td><td>${link("block", b.id, short(b.id))}</td>
    <td class="hide-narrow">${esc(ago(b.timestamp))}</td>
    <td class="num">${b.tx_count}</td><td class="num hide-narrow">${b.size}</td></tr>`;
}

async function home() {
  const blocks = await api("blocks?limit=15");
  view.innerHTML = `<h2>Latest blocks</h2><table id="blocks">
    <thead><tr><th class="num">Height</th><th>Hash</th><th class="hide-narrow">Time</th>
    <th class="num">Txs</th><th class="num hide-narrow">Bytes</th></tr></thead>
    <tbody>${blocks.map((b) => blockRow(b, false)).join("")}</tbody></table>`;
}

async function addLatestBlock(hash) {
  const body = document.querySelector("#blocks tbody");
  if (!body) return;
  const b = await api("block/" + hash);
  body.querySelectorAll("tr").forEach((tr) => {
    if (Number(tr.dataset.height) >= b.height) tr.remove();
  });
  body.insertAdjacentHTML("afterbegin", blockRow(b, true));
  while (body.rows.length > 15) body.deleteRow(-1);
}

async function block(hash) {
  const b = await api("block/" + hash);
  view.innerHTML = `<h2>Block ${b.height}</h2><dl>
    <dt>Hash</dt><dd class="hash">${esc(b.id)}</dd>
    <dt>Previous</dt><dd>${b.previousblockhash ? link("block", b.previousblockhash) : "none (genesis)"}</dd>
    <dt>Time</dt><dd>${esc(when(b.timestamp))} (${esc(ago(b.timestamp))})</dd>
    <dt>Confirmations</dt><dd>${b.in_best_chain ? b.confirmations : "not on the best chain"}</dd>
    <dt>Transactions</dt><dd>${b.tx_count}</dd><dt>Size</dt><dd>${b.size} bytes</dd>
    <dt>Merkle root</dt><dd class="hash">${esc(b.merkle_root)}</dd>
    <dt>Bits</dt><dd>${esc(b.bits)}</dd><dt>Nonce</dt><dd>${b.nonce}</dd>
    <dt>Chain work</dt><dd class="hash">${esc(b.chain_work)}</dd></dl>
    <h2>Transactions</h2><table><tbody>
    ${b.txids.map((t, i) => `<tr><td class="num">${i}</td><td>${link("tx", t)}</td></tr>`).join("")}
    </tbody></table>`;
}

function txStatus(s) {
  return s.confirmed
    ? `confirmed in ${link("block", s.block_hash, "block " + s.block_height)} (${s.confirmations} confirmations)`
    : `<span class="warn">in the mempool, unconfirmed</span>`;
}

function txTable(tx) {
  const ins = tx.coinbase ? `<tr><td>coinbase (new coins)</td><td></td></tr>` :
    tx.inputs.map((i) => `<tr><td>${link("address", i.address)}<br>
      <span class="muted">from ${link("tx", i.txid, short(i.txid))}:${i.vout}</span></td>
      <td class="num">${i.value ?? "?"}</td></tr>`).join("");
  const outs = tx.outputs.map((o, n) => `<tr><td>${n}: ${link("address", o.address)}</td>
      <td class="num">${o.value}</td></tr>`).join("");
  return `<table><thead><tr><th>Inputs</th><th class="num">Value</th></tr></thead><tbody>${ins}</tbody></table>
    <table style="margin-top:.6rem"><thead><tr><th>Outputs</th><th class="num">Value</th></tr></thead><tbody>${outs}</tbody></table>`;
}

async function tx(txid) {
  const t = await api("tx/" + txid);
  view.innerHTML = `<h2>Transaction</h2><dl>
    <dt>Txid</dt><dd class="hash" id="txid">${esc(t.txid)}</dd>
    <dt>Status</dt><dd>${txStatus(t.status)}</dd>
    <dt>Size</dt><dd>${t.size} bytes</dd>
    <dt>Fee</dt><dd>${t.coinbase ? "none (coinbase)" : t.fee ?? "unknown"}</dd></dl>
    <h2>Inputs and outputs</h2>${txTable(t)}`;
}

async function address(addr) {
  const [a, txs, utxos] = await Promise.all([
    api("address/" + addr), api("address/" + addr + "/txs"), api("address/" + addr + "/utxo"),
  ]);
  view.innerHTML = `<h2>Address</h2><dl>
    <dt>Address</dt><dd class="hash">${esc(a.address)}</dd>
    <dt>Balance</dt><dd id="balance">${a.confirmed_balance}</dd>
    <dt>With the mempool</dt><dd id="unconfirmed-balance">${a.unconfirmed_balance}</dd>
    <dt>Transactions</dt><dd>${a.tx_count} confirmed, ${a.mempool_tx_count} in the mempool</dd>
    <dt>Coins</dt><dd>${utxos.length}</dd></dl>
    <h2>Transactions</h2><table><thead><tr><th>Txid</th><th>Status</th></tr></thead><tbody>
    ${txs.map((t) => `<tr><td>${link("tx", t.txid, short(t.txid))}</td><td>${t.status.confirmed
      ? "block " + t.status.block_height : '<span class="warn">mempool</span>'}</td></tr>`).join("")
      || '<tr><td colspan="2" class="muted">none</td></tr>'}</tbody></table>`;
}

async function mempool() {
  const [m, ids] = await Promise.all([api("mempool"), api("mempool/txids")]);
  view.innerHTML = `<h2>Mempool</h2><dl><dt>Transactions</dt><dd>${m.count}</dd>
    <dt>Bytes</dt><dd>${m.bytes}</dd><dt>Fees</dt><dd>${m.total_fee}</dd></dl>
    <h2>Transactions</h2><table><tbody>
    ${ids.slice(0, 200).map((t) => `<tr><td>${link("tx", t)}</td></tr>`).join("")
      || '<tr><td class="muted">empty</td></tr>'}</tbody></table>`;
}

async function peers() {
  const p = await api("peers");
  view.innerHTML = `<h2>Peers</h2><table><thead><tr><th>Peer</th><th class="hide-narrow">Address</th>
    <th>Direction</th><th class="num">Height</th><th class="num">Ping ms</th></tr></thead><tbody>
    ${p.peers.map((x) => `<tr><td class="hash">${esc(short(x.id))}</td>
      <td class="hash hide-narrow">${esc(x.address)}</td><td>${esc(x.direction)}</td>
      <td class="num">${x.height ?? "?"}</td>
      <td class="num">${x.ping_ms == null ? "?" : x.ping_ms.toFixed(1)}</td></tr>`).join("")
      || '<tr><td colspan="5" class="muted">no peers</td></tr>'}</tbody></table>
    <h2>Bans</h2><table><tbody>${p.bans.map((b) => `<tr><td class="hash">${esc(b.id)}</td>
      <td class="num">${b.remaining_secs} s left</td></tr>`).join("")
      || '<tr><td class="muted">none</td></tr>'}</tbody></table>`;
}

// Charts, drawn here as inline SVG (nothing is loaded from elsewhere):
// the last blocks' intervals, difficulty and transactions, and the
// mempool by fee rate. Each chart says how many points it drew in
// data-points.
const CHART_BLOCKS = 100;
const SVG_W = 640, SVG_H = 200, PAD_L = 52, PAD_R = 12, PAD_T = 12, PAD_B = 30;

// log2 of the target that compact bits (8 hex digits) encode.
function log2Target(bitsHex) {
  const bits = parseInt(bitsHex, 16);
  const exponent = bits >>> 24, mantissa = bits & 0x7fffff;
  return Math.log2(mantissa) + 8 * (exponent - 3);
}

const compact = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });
const fmt = (v) => (Math.abs(v) >= 10000 ? compact.format(v) : Number.isInteger(v) ? String(v) : v.toFixed(2));

function frame(name, title, count, body) {
  return `<figure class="chart" data-chart="${name}" data-points="${count}">
    <figcaption>${esc(title)}</figcaption>${body}</figure>`;
}

function axes(x0, x1, y0, y1, xLabel) {
  const bottom = SVG_H - PAD_B;
  return `<line class="axis" x1="${PAD_L}" y1="${bottom}" x2="${SVG_W - PAD_R}" y2="${bottom}"/>
    <line class="axis" x1="${PAD_L}" y1="${PAD_T}" x2="${PAD_L}" y2="${bottom}"/>
    <text class="tick" x="${PAD_L - 6}" y="${bottom}" text-anchor="end">${fmt(y0)}</text>
    <text class="tick" x="${PAD_L - 6}" y="${PAD_T + 8}" text-anchor="end">${fmt(y1)}</text>
    <text class="tick" x="${PAD_L}" y="${SVG_H - 10}">${esc(x0)}</text>
    <text class="tick" x="${SVG_W - PAD_R}" y="${SVG_H - 10}" text-anchor="end">${esc(x1)}</text>
    <text class="tick" x="${(PAD_L + SVG_W - PAD_R) / 2}" y="${SVG_H - 10}" text-anchor="middle">${esc(xLabel)}</text>`;
}

// points: [{x: height, y: value}], oldest first.
function lineChart(name, title, unit, points) {
  if (points.length === 0) return frame(name, title, 0, '<p class="muted">not enough blocks yet</p>');
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  // One point alone sits in the middle.
  const lone = Math.min(...xs) === Math.max(...xs);
  const x0 = Math.min(...xs) - (lone ? 1 : 0), x1 = Math.max(...xs) + (lone ? 1 : 0);
  const y0 = Math.min(0, ...ys), y1 = Math.max(...ys, y0 + 1);
  const sx = (x) => PAD_L + ((x - x0) / (x1 - x0)) * (SVG_W - PAD_L - PAD_R);
  const sy = (y) => SVG_H - PAD_B - ((y - y0) / (y1 - y0)) * (SVG_H - PAD_T - PAD_B);
  const line = points.map((p, i) => `${i ? "L" : "M"}${sx(p.x).toFixed(1)} ${sy(p.y).toFixed(1)}`).join(" ");
  const dots = points.map((p) => `<circle class="point" cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="2.5">
    <title>block ${p.x}: ${fmt(p.y)} ${esc(unit)}</title></circle>`).join("");
  return frame(name, title, points.length, `<svg viewBox="0 0 ${SVG_W} ${SVG_H}" role="img" aria-label="${esc(title)}">
    ${axes(x0, x1, y0, y1, "height")}<path class="line" d="${line}"/>${dots}</svg>`);
}

// bars: [{label, value, note}], left to right.
function barChart(name, title, bars) {
  if (bars.length === 0) return frame(name, title, 0, '<p class="muted">the mempool is empty</p>');
  const top = Math.max(1, ...bars.map((b) => b.value));
  const slot = (SVG_W - PAD_L - PAD_R) / bars.length;
  const rects = bars.map((b, i) => {
    const h = (b.value / top) * (SVG_H - PAD_T - PAD_B);
    const x = PAD_L + i * slot + slot * 0.15;
    return `<rect class="bar" x="${x.toFixed(1)}" y="${(SVG_H - PAD_B - h).toFixed(1)}"
      width="${(slot * 0.7).toFixed(1)}" height="${h.toFixed(1)}"><title>${esc(b.note)}</title></rect>
      <text class="tick" x="${(x + slot * 0.35).toFixed(1)}" y="${SVG_H - PAD_B + 14}" text-anchor="middle">${esc(b.label)}</text>`;
  }).join("");
  return frame(name, title, bars.length, `<svg viewBox="0 0 ${SVG_W} ${SVG_H}" role="img" aria-label="${esc(title)}">
    ${axes("", "", 0, top, "")}${rects}</svg>`);
}

async function charts() {
  const [list, pool] = await Promise.all([api(`blocks?limit=${CHART_BLOCKS}`), api("mempool")]);
  const blocks = list.slice().sort((a, b) => a.height - b.height);
  const intervals = blocks.slice(1).map((b, i) => ({ x: b.height, y: b.timestamp - blocks[i].timestamp }));
  // Difficulty as leading zero bits: 256 - log2(target + 1), about.
  const difficulty = blocks.map((b) => ({ x: b.height, y: Math.round((256 - log2Target(b.bits)) * 100) / 100 }));
  const txs = blocks.map((b) => ({ x: b.height, y: b.tx_count }));
  const fees = pool.fee_histogram.slice().reverse().map((band) => ({
    label: "≥" + band.min_fee_rate, value: band.count,
    note: `${band.count} transactions (${band.bytes} bytes) paying at least ${band.min_fee_rate} per 1,000 bytes`,
  }));
  view.innerHTML = `<h2>Charts</h2><p class="muted">The last ${blocks.length} blocks, and the mempool now.</p>
    <div class="charts">
    ${lineChart("intervals", "Seconds between blocks", "s", intervals)}
    ${lineChart("difficulty", "Difficulty (leading zero bits)", "bits", difficulty)}
    ${lineChart("transactions", "Transactions per block", "transactions", txs)}
    ${barChart("fees", "Mempool by fee rate (transactions; per 1,000 bytes)", fees)}
    </div>`;
}

async function route() {
  const [, kind, arg] = location.hash.split("/");
  const id = arg ? decodeURIComponent(arg) : "";
  try {
    if (kind === "block") await block(id);
    else if (kind === "tx") await tx(id);
    else if (kind === "address") await address(id);
    else if (kind === "mempool") await mempool();
    else if (kind === "peers") await peers();
    else if (kind === "charts") await charts();
    else await home();
  } catch (e) {
    showError(e);
  }
}

// A search: a height, a block hash or txid (64 hex digits: tried as a
// block, then as a transaction), or an address.
async function search(q) {
  q = q.trim();
  if (!q) return;
  if (/^\d+$/.test(q)) {
    try { location.hash = "#/block/" + (await api("block-height/" + q)); } catch (e) { showError(e); }
  } else if (/^[0-9a-fA-F]{64}$/.test(q)) {
    const h = q.toLowerCase();
    try { await api("block/" + h); location.hash = "#/block/" + h; }
    catch { location.hash = "#/tx/" + h; }
  } else {
    location.hash = "#/address/" + q;
  }
}

$("search").addEventListener("submit", (ev) => { ev.preventDefault(); search($("q").value); });
window.addEventListener("hashchange", route);

function follow() {
  const es = new EventSource("/api/events");
  es.addEventListener("open", () => { $("live").textContent = "live"; });
  es.addEventListener("error", () => { $("live").textContent = "reconnecting…"; });
  es.addEventListener("tip", async (ev) => {
    const t = JSON.parse(ev.data);
    const kind = location.hash.split("/")[1] || "";
    if (kind === "") await addLatestBlock(t.hash).catch(() => home());
    else if (kind === "address" || kind === "tx" || kind === "charts") route();
    refreshStatus();
  });
  es.addEventListener("tx", () => {
    refreshStatus();
    const kind = location.hash.split("/")[1] || "";
    if (kind === "address" || kind === "mempool" || kind === "charts") route();
  });
}

refreshStatus();
route();
follow();
setInterval(refreshStatus, 10000);
