// convkit serve, Network tab: the CNN that `convkit train-demo` trains, layer by layer, for one
// held-out image. Maps, prediction, receptive fields and arithmetic all come from the server
// (/api/network, /api/network/run, /api/network/cell); this file only draws them (each map's
// grey levels span that map's own range).
'use strict';

const N = { info: null, run: null, started: false, poll: null, seq: 0, selected: null };

function greyCanvas(map, h, w, zoom, testid, label) {
  const cv = el('canvas', { width: String(w * zoom), height: String(h * zoom), testid, 'aria-label': label, role: 'button', tabindex: '0' });
  const ctx = cv.getContext('2d');
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of map) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const img = ctx.createImageData(w, h);
  map.forEach((v, i) => {
    const g = hi > lo ? Math.round((255 * (v - lo)) / (hi - lo)) : 0;
    img.data.set([g, g, g, 255], 4 * i);
  });
  const tmp = el('canvas', { width: String(w), height: String(h) });
  tmp.getContext('2d').putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, w * zoom, h * zoom);
  return cv;
}

async function netStatus() {
  document.body.dataset.netPending = '1';
  try {
    const resp = await fetch('/api/network');
    N.info = await resp.json();
  } catch (e) {
    showError($('#net-error'), e.message);
    return;
  }
  $('#net-status').textContent = N.info.message;
  $('#net-status').dataset.state = N.info.state;
  $('#net-stack').textContent = `layers: ${N.info.stack}`;
  if (N.info.state === 'training') {
    N.poll = setTimeout(netStatus, 500);
    return;
  }
  if (N.info.state === 'ready') {
    $('#net-image').max = String(N.info.test_count - 1);
    netRun();
  } else document.body.dataset.netPending = '0';
}

async function netRun() {
  const seq = ++N.seq;
  document.body.dataset.netPending = '1';
  const image = clampInt($('#net-image'), 0, N.info.test_count - 1);
  try {
    const r = await post('/api/network/run', { image });
    if (seq !== N.seq) return;
    showError($('#net-error'), null);
    N.run = r;
    N.selected = null;
    netDraw();
  } catch (e) {
    if (seq === N.seq) showError($('#net-error'), e.message);
  }
  if (seq === N.seq) document.body.dataset.netPending = '0';
}

function netDraw() {
  const r = N.run;
  const pct = (p) => `${(100 * p).toFixed(1)}%`;
  $('#net-prediction').replaceChildren(
    el('span', {}, `Image ${r.image}, a ${r.class}: predicted `),
    el('b', { testid: 'net-prediction' }, r.predicted_class),
    el('span', {}, ` (${pct(r.probabilities[r.prediction])})`),
  );
  const box = $('#net-layers');
  box.replaceChildren();
  const inRow = el('div', { class: 'net-layer' });
  inRow.append(el('h3', {}, `input 1×28×28 (${r.class})`));
  const maps = el('div', { class: 'net-maps' });
  maps.append(greyCanvas(r.input, 28, 28, 4, 'net-input', 'input image'));
  inRow.append(maps);
  box.append(inRow);
  r.layers.forEach((l, li) => {
    const [c, h, w] = l.shape;
    const row = el('div', { class: 'net-layer', testid: `net-layer-${li}` });
    const f = N.info.fields[li];
    row.append(el('h3', {}, `${l.name}: ${f.text} → ${c}×${h}×${w}`));
    const maps = el('div', { class: 'net-maps' });
    if (l.name === 'classifier') {
      r.probabilities.forEach((p, k) => {
        const b = el('button', { type: 'button', class: k === r.prediction ? 'net-class predicted' : 'net-class', testid: `net-map-${li}-${k}` }, `${N.info.classes[k]}: score ${fmt(l.maps[k])}, p ${pct(p)}`);
        b.addEventListener('click', () => netCell(li, k, 0, 0));
        maps.append(b);
      });
    } else {
      const zoom = Math.max(2, Math.floor(84 / h));
      for (let k = 0; k < c; k++) {
        const cv = greyCanvas(l.maps.slice(k * h * w, (k + 1) * h * w), h, w, zoom, `net-map-${li}-${k}`, `${l.name} channel ${k}: click a cell`);
        cv.addEventListener('click', (ev) => {
          // offsetX/Y and clientWidth/Height both measure the padding box (inside the border).
          const i = Math.max(0, Math.min(h - 1, Math.floor((ev.offsetY / cv.clientHeight) * h)));
          const j = Math.max(0, Math.min(w - 1, Math.floor((ev.offsetX / cv.clientWidth) * w)));
          netCell(li, k, i, j);
        });
        maps.append(cv);
      }
    }
    row.append(maps);
    box.append(row);
  });
}

async function netCell(layer, c, i, j) {
  document.body.dataset.netPending = '1';
  try {
    const r = await post('/api/network/cell', { image: N.run.image, layer, c, i, j });
    showError($('#net-error'), null);
    N.selected = { layer, c, i, j, r };
    netDetail();
  } catch (e) {
    showError($('#net-error'), e.message);
  }
  document.body.dataset.netPending = '0';
}

function netDetail() {
  const { layer, c, i, j, r } = N.selected;
  $('#net-detail').hidden = false;
  for (const cv of document.querySelectorAll('#net-layers canvas, #net-layers .net-class')) cv.classList.remove('picked');
  const picked = document.querySelector(`[data-testid="net-map-${layer}-${c}"]`);
  if (picked) picked.classList.add('picked');
  const f = r.field;
  const cv = $('#net-rf');
  const ctx = cv.getContext('2d');
  const z = cv.width / 28;
  const img = greyCanvas(N.run.input, 28, 28, z, '', '');
  ctx.clearRect(0, 0, cv.width, cv.height);
  ctx.drawImage(img, 0, 0);
  ctx.fillStyle = 'rgba(31, 158, 106, 0.35)';
  ctx.strokeStyle = '#1f9e6a';
  ctx.lineWidth = 2;
  const [r0, r1] = f.clipped_rows;
  const [c0, c1] = f.clipped_cols;
  ctx.fillRect(c0 * z, r0 * z, (c1 - c0 + 1) * z, (r1 - r0 + 1) * z);
  ctx.strokeRect(f.cols[0] * z, f.rows[0] * z, f.size[1] * z, f.size[0] * z);
  cv.dataset.rfRows = String(f.size[0]);
  cv.dataset.rfCols = String(f.size[1]);
  const where = r.layer === 'classifier' ? `class ${N.info.classes[c]}` : `channel ${c}, cell (${i}, ${j})`;
  $('#net-rf-text').replaceChildren(
    el('span', {}, `${r.layer}, ${where} = ${fmt(r.value)}. Receptive field `),
    el('b', { testid: 'net-rf-size' }, `${f.size[0]} × ${f.size[1]}`),
    el('span', {}, ` input pixels: rows ${f.rows[0]}…${f.rows[1]}, columns ${f.cols[0]}…${f.cols[1]} (outside the image is padding).`),
  );
  const a = r.arithmetic;
  const box = $('#net-arith');
  box.replaceChildren();
  if (a.kind === 'conv') {
    const ol = el('ol', { class: 'net-sums' });
    for (const ch of a.channels) {
      ol.append(el('li', { testid: `net-ch-${ch.c}` }, `input channel ${ch.c}: Σ window ⊙ weights = ${fmt(ch.sum)}  (running ${fmt(ch.running)})`));
    }
    box.append(
      el('p', {}, `${a.channels.length} input channel${a.channels.length === 1 ? '' : 's'}, each a ${a.channels[0].window.length}×${a.channels[0].window.length} window times the matching slice of filter ${c}:`),
      ol,
      el('p', { class: 'vol-total', testid: 'net-arith-total' }, `Σ over channels ${fmt(a.sum)} + bias ${fmt(a.bias)} = ${fmt(a.total)} (the engine's output: ${fmt(r.value)})`),
    );
  } else if (a.kind === 'relu') {
    box.append(el('p', { class: 'vol-total', testid: 'net-arith-total' }, `ReLU: max(0, ${fmt(a.input)}) = ${fmt(a.total)}`));
  } else {
    const t = el('table', { class: 'matrix' });
    for (const row of a.window) {
      const tr = el('tr');
      for (const v of row) tr.append(el('td', {}, fmt(v)));
      t.append(tr);
    }
    box.append(el('p', {}, 'Max pooling over the 2×2 window of the previous layer:'), t, el('p', { class: 'vol-total', testid: 'net-arith-total' }, `max = ${fmt(a.total)}`));
  }
}

$('#net-image').addEventListener('change', () => N.info && N.info.state === 'ready' && netRun());
$('#net-prev-img').addEventListener('click', () => {
  $('#net-image').value = String(Math.max(0, vnum('#net-image') - 1));
  if (N.info && N.info.state === 'ready') netRun();
});
$('#net-next-img').addEventListener('click', () => {
  $('#net-image').value = String(vnum('#net-image') + 1);
  if (N.info && N.info.state === 'ready') netRun();
});
$('#net-form').addEventListener('submit', (ev) => ev.preventDefault());

extraTabs.network = {
  activate() {
    if (N.started) return;
    N.started = true;
    netStatus();
  },
};
