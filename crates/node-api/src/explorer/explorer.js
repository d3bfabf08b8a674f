// The explorer: reads the node's own API and follows its event stream.
// Views live after '#': #/, #/block/HASH, #/tx/TXID, #/address/ADDR,
// #/mempool, #/peers.
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

async function route() {
  const [, kind, arg] = location.hash.split("/");
  const id = arg ? decodeURIComponent(arg) : "";
  try {
    if (kind === "block") await block(id);
    else if (kind === "tx") await tx(id);
    else if (kind === "address") await address(id);
    else if (kind === "mempool") await mempool();
    else if (kind === "peers") await peers();
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
    else if (kind === "address" || kind === "tx") route();
    refreshStatus();
  });
  es.addEventListener("tx", () => {
    refreshStatus();
    const kind = location.hash.split("/")[1] || "";
    if (kind === "address" || kind === "mempool") route();
  });
}

refreshStatus();
route();
follow();
setInterval(refreshStatus, 10000);
