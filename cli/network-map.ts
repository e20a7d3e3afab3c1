/**
 * The devnet's network map: relays as nodes, overlay links as edges, the client's circuits highlighted. One
 * self-contained page (no external assets) that polls map.json, which the devnet assembles from every relay's
 * status.json and the client's open circuits.
 */
export const NETWORK_MAP_PAGE = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Allium devnet: network map</title>
<style>
 body{font:14px system-ui,sans-serif;margin:0;background:#10151f;color:#dfe6f3}
 header{padding:10px 16px;background:#1b2436} h1{font-size:16px;margin:0;display:inline} header span{margin-left:18px;opacity:.8}
 svg{display:block;width:100vw;height:calc(100vh - 44px)}
 .edge{stroke:#3b4a66;stroke-width:1.5} .circ{stroke:#f5b83d;stroke-width:3.5;fill:none;opacity:.85}
 .node circle{fill:#2e7dd7;stroke:#9cc4f2;stroke-width:2} .node.exit circle{fill:#3c9a5f} .node.down circle{fill:#7a2f2f}
 .node text{fill:#dfe6f3;font-size:13px;text-anchor:middle} .client circle{fill:#f5b83d}
</style></head><body>
<header><h1>Allium devnet</h1><span>relays <b id="relays">0</b></span><span>links <b id="links">0</b></span><span>client circuits <b id="circuits">0</b></span></header>
<svg id="map" viewBox="0 0 1000 700"></svg>
<script>
(function(){
 var NS = 'http://www.w3.org/2000/svg';
 function el(name, attrs, parent){ var e = document.createElementNS(NS, name); for (var k in attrs) e.setAttribute(k, attrs[k]); parent.appendChild(e); return e; }
 function draw(m){
  var svg = document.getElementById('map'); svg.innerHTML = '';
  var pos = {}; var n = m.relays.length;
  m.relays.forEach(function(r, i){ var a = 2*Math.PI*i/n - Math.PI/2; pos[r.fingerprint] = [500 + 260*Math.cos(a), 360 + 260*Math.sin(a)]; });
  pos.client = [110, 640];
  var edges = 0;
  m.links.forEach(function(l){ var a = pos[l[0]], b = pos[l[1]]; if (!a || !b) return; edges++;
   el('line', {x1:a[0], y1:a[1], x2:b[0], y2:b[1], 'class':'edge'}, svg); });
  m.circuits.forEach(function(c){ var pts = [pos.client].concat(c.map(function(fp){ return pos[fp]; })).filter(Boolean);
   el('polyline', {points: pts.map(function(p){ return p[0]+','+p[1]; }).join(' '), 'class':'circ'}, svg); });
  m.relays.forEach(function(r){ var p = pos[r.fingerprint];
   var g = el('g', {'class':'node' + (r.exit ? ' exit' : '') + (r.up ? '' : ' down'), 'data-fp': r.fingerprint}, svg);
   el('circle', {cx:p[0], cy:p[1], r:24}, g); var t = el('text', {x:p[0], y:p[1]+44}, g); t.textContent = r.nickname; });
  var g = el('g', {'class':'node client'}, svg); el('circle', {cx:pos.client[0], cy:pos.client[1], r:18}, g);
  var t = el('text', {x:pos.client[0], y:pos.client[1]+38}, g); t.textContent = 'client';
  document.getElementById('relays').textContent = m.relays.filter(function(r){ return r.up; }).length;
  document.getElementById('links').textContent = edges;
  document.getElementById('circuits').textContent = m.circuits.length;
  document.body.dataset.ready = '1';
 }
 function tick(){ fetch('map.json').then(function(r){ return r.json(); }).then(draw).catch(function(){}); }
 tick(); setInterval(tick, 1000);
})();
</script></body></html>
`;
