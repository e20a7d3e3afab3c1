/**
 * The relay status page (docs/operator-guide.md §Status page): one self-contained HTML document — inline CSS and
 * JavaScript, no external assets, so it works offline — that polls status.json every second and draws bandwidth
 * over time, links and circuits, drops and errors by reason, store usage and replication, the directory, version
 * and uptime.
 */
export const STATUS_PAGE = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Allium relay status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
 header{background:#2b3a55;color:#fff;padding:12px 20px;display:flex;gap:24px;align-items:baseline;flex-wrap:wrap}
 header h1{font-size:18px;margin:0} header span{opacity:.85}
 main{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:16px;padding:16px}
 section{background:#fff;border-radius:8px;padding:12px 16px;box-shadow:0 1px 2px #0002}
 h2{font-size:14px;margin:0 0 8px;text-transform:uppercase;letter-spacing:.04em;color:#55607a}
 .big{font-size:28px;font-weight:600} .row{display:flex;gap:24px} table{border-collapse:collapse;width:100%}
 td,th{text-align:left;padding:2px 6px;border-bottom:1px solid #eef} td.n{text-align:right;font-variant-numeric:tabular-nums}
 svg{width:100%;height:160px} .in{stroke:#2e7dd7} .out{stroke:#d7702e} .muted{color:#889}
 .bar{height:10px;background:#e4e8f0;border-radius:5px;overflow:hidden} .bar>div{height:100%;background:#3c9a5f}
</style></head><body>
<header><h1>Allium relay <span id="nick">…</span></h1><span>fingerprint <code id="fp">…</code></span>
<span>version <b id="version">…</b></span><span>up <b id="uptime">…</b></span></header>
<main>
 <section style="grid-column:1/-1"><h2>Bandwidth (bytes per second, last 5 minutes)</h2>
  <svg id="chart" viewBox="0 0 600 160" preserveAspectRatio="none"><polyline class="in" fill="none" stroke-width="2" points=""/><polyline class="out" fill="none" stroke-width="2" points=""/></svg>
  <div class="row"><span>in <b id="rate-in">0</b> B/s</span><span>out <b id="rate-out">0</b> B/s</span><span class="muted">total in <span id="bytes-in">0</span> B, out <span id="bytes-out">0</span> B</span></div></section>
 <section><h2>Links</h2><div class="row"><div><div class="big" id="links-relay">0</div>relays</div><div><div class="big" id="links-client">0</div>clients</div></div></section>
 <section><h2>Circuits</h2><div class="big" id="circuits">0</div><span class="muted">cells in <span id="cells-in">0</span>, out <span id="cells-out">0</span></span></section>
 <section><h2>Store</h2><div><span id="store-blocks">0</span> blocks, <span id="store-bytes">0</span> of <span id="store-quota">0</span> bytes</div>
  <div class="bar"><div id="store-fill" style="width:0"></div></div><div class="muted">replication: <span id="replicated">0</span> copies pushed, generation <code id="generation">–</code></div></section>
 <section><h2>Drops by reason</h2><table id="drops"></table></section>
 <section><h2>Errors by code</h2><table id="errors"></table></section>
 <section style="grid-column:1/-1"><h2>Directory (<span id="dir-size">0</span> relays)</h2><table id="directory"><thead><tr><th>nickname</th><th>fingerprint</th><th>capabilities</th><th>exit</th><th>neighbour</th></tr></thead><tbody></tbody></table></section>
</main>
<script>
(function(){
 var token = new URLSearchParams(location.search).get('token');
 var url = 'status.json' + (token ? '?token=' + encodeURIComponent(token) : '');
 function set(id, v){ var e = document.getElementById(id); if (e) e.textContent = String(v); }
 function dur(s){ var h = Math.floor(s/3600), m = Math.floor(s%3600/60); return (h? h+'h ':'') + m + 'm ' + (s%60) + 's'; }
 function table(id, obj){ var t = document.getElementById(id); t.innerHTML = '';
  var keys = Object.keys(obj).filter(function(k){return obj[k] > 0}).sort(function(a,b){return obj[b]-obj[a]});
  if (!keys.length){ t.innerHTML = '<tr><td class="muted">none</td></tr>'; return; }
  keys.forEach(function(k){ var r = t.insertRow(); r.insertCell().textContent = k; var c = r.insertCell(); c.className='n'; c.textContent = obj[k]; r.dataset.key = k; }); }
 function chart(h){ var svg = document.getElementById('chart'); var lines = svg.querySelectorAll('polyline');
  var max = 1; h.forEach(function(p){ max = Math.max(max, p.in, p.out); });
  function pts(f){ return h.map(function(p,i){ return (i*600/Math.max(1,h.length-1)).toFixed(1)+','+(155-150*p[f]/max).toFixed(1); }).join(' '); }
  lines[0].setAttribute('points', pts('in')); lines[1].setAttribute('points', pts('out')); }
 function draw(s){
  set('nick', s.nickname); set('fp', s.fingerprint); set('version', s.version); set('uptime', dur(s.uptimeSeconds));
  set('links-relay', s.links.relay); set('links-client', s.links.client); set('circuits', s.circuits);
  set('cells-in', s.cells.in); set('cells-out', s.cells.out); set('bytes-in', s.bytes.in); set('bytes-out', s.bytes.out);
  var last = s.history[s.history.length-1] || {in:0,out:0}; set('rate-in', last.in); set('rate-out', last.out);
  set('store-blocks', s.store.blocks); set('store-bytes', s.store.bytes); set('store-quota', s.store.quota);
  document.getElementById('store-fill').style.width = (s.store.quota ? 100*s.store.bytes/s.store.quota : 0) + '%';
  set('replicated', s.store.replicated); set('generation', s.store.generation || '–');
  table('drops', s.drops); table('errors', s.errors); chart(s.history);
  set('dir-size', s.directory.length); var body = document.querySelector('#directory tbody'); body.innerHTML = '';
  s.directory.forEach(function(d){ var r = body.insertRow(); r.insertCell().textContent = d.nickname; r.insertCell().textContent = d.fingerprint.slice(0,16);
   r.insertCell().textContent = d.caps.join(', '); r.insertCell().textContent = d.exit ? 'yes' : 'no'; r.insertCell().textContent = d.neighbour ? '●' : ''; });
  document.body.dataset.ready = '1';
 }
 function tick(){ fetch(url).then(function(r){ return r.json(); }).then(draw).catch(function(){}); }
 tick(); setInterval(tick, 1000);
})();
</script></body></html>
`;
