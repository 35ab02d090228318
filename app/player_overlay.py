"""Case review's player overlay: boxes over the original video at its own rate, and a phase strip whose
cursor follows playback.

Streamlit's video element has no overlay or time API, so this small trusted script (a components v2
component, no iframe, nothing fetched) finds the page's first <video> (the case player, as the
player tools do), lays a canvas over it and redraws at every displayed frame from the JSON of
`analysis.review_overlay.overlay_payload`: the same interpolation and duplicate suppression as
`boxes_at` there (a box moves linearly between two analysed frames of its track at most `max_gap_s`
apart, else is held one interval; one instrument boxed as two classes is drawn once). The strip
under the player shows the phases, a cursor at the player's position and the time and phase there;
a click on it seeks the player.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

_HTML = """
<div class="overlay-strip">
  <div class="strip" title="Phases; click to jump"><div class="phases"></div><div class="cursor"></div></div>
  <div class="now"><span class="time">0:00</span><span class="phase"></span><span class="boxes"></span></div>
</div>
"""
_CSS = """
.overlay-strip{font:13px system-ui,sans-serif;color:#333}
.strip{position:relative;height:14px;background:#eee;border-radius:3px;cursor:pointer;overflow:hidden}
.phases{position:absolute;inset:0}
.phases div{position:absolute;top:0;bottom:0}
.cursor{position:absolute;top:-2px;bottom:-2px;width:2px;margin-left:-1px;background:#111;left:0}
.now{display:flex;gap:.6rem;margin-top:.15rem;color:#555}
.now .time{font-variant-numeric:tabular-nums;color:#111}
"""
_JS = """
export default function(component) {
  const { parentElement, data } = component;
  const d = data || {};
  const root = parentElement.querySelector('.overlay-strip');
  const strip = root.querySelector('.strip'), cursor = root.querySelector('.cursor');
  const timeText = root.querySelector('.time'), phaseText = root.querySelector('.phase');
  const boxesText = root.querySelector('.boxes');
  const video = () => document.querySelector('[data-testid="stVideo"]') || document.querySelector('video');
  const phases = d.phases || [];
  const tracks = d.on ? (d.tracks || []) : [];
  const loose = d.on ? (d.loose || {t: [], c: [], p: [], b: []}) : {t: [], c: [], p: [], b: []};
  const scale = d.scale || 10000, interval = d.interval_s || 1, maxGap = d.max_gap_s || 1.5, eps = 1e-6;
  const suppressIou = d.suppress_iou || 0.7;
  const duration = () => {
    const v = video();
    return v && isFinite(v.duration) && v.duration > 0 ? v.duration : Math.max(d.duration_s || 0, 1e-3);
  };
  const clock = (s) => {
    const t = Math.round(Math.max(s, 0)), h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), x = t % 60;
    const ss = String(x).padStart(2, '0');
    return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
  };
  const lay = () => {
    const box = root.querySelector('.phases');
    box.innerHTML = '';
    const total = duration();
    phases.forEach((p) => {
      const el = document.createElement('div');
      el.style.left = (100 * p.s / total) + '%';
      el.style.width = (100 * Math.max(p.e - p.s, 0) / total) + '%';
      el.style.background = p.colour;
      el.title = p.name;
      box.appendChild(el);
    });
  };
  lay();
  boxesText.textContent = d.on ? 'boxes drawn at the video\\'s own rate' : '';
  strip.onclick = (e) => {
    const v = video(), r = strip.getBoundingClientRect();
    if (v && r.width > 0) v.currentTime = Math.max(0, Math.min(1, (e.clientX - r.left) / r.width)) * duration();
  };
  // Last analysed frame of a sorted time list at or before t (binary search), -1 before the first.
  const lastAt = (times, t) => {
    let lo = 0, hi = times.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (times[mid] <= t + eps) lo = mid + 1; else hi = mid; }
    return lo - 1;
  };
  const boxesAt = (t) => {
    const out = [];
    for (const tr of tracks) {
      const i = lastAt(tr.t, t);
      if (i < 0) continue;
      const b = tr.b, t0 = tr.t[i];
      let box = [b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]];
      if (i + 1 < tr.t.length && tr.t[i + 1] - t0 <= maxGap + eps) {
        const a = (t - t0) / (tr.t[i + 1] - t0);
        box = box.map((v, k) => v * (1 - a) + b[4 * i + 4 + k] * a);
      } else if (t - t0 >= interval - eps) continue;
      out.push([box, Array.isArray(tr.c) ? tr.c[i] : tr.c, tr.id, tr.p[i]]);
    }
    for (let j = 0; j < loose.t.length; j++) {
      const ts = loose.t[j];
      if (ts <= t + eps && t - ts < interval - eps) out.push([loose.b.slice(4 * j, 4 * j + 4), loose.c[j], -1, loose.p[j]]);
    }
    return out.length > 1 ? distinct(out) : out;
  };
  // One instrument read as two classes (boxes overlapping by more than suppress_iou): the more confident only.
  const distinct = (found) => {
    const order = found.map((_, i) => i).sort((a, b) => found[b][3] - found[a][3] || a - b), kept = [];
    for (const i of order) {
      const [x1, y1, x2, y2] = found[i][0], area = Math.max(x2 - x1, 0) * Math.max(y2 - y1, 0);
      const dup = kept.some((j) => {
        const [a1, b1, a2, b2] = found[j][0];
        const inter = Math.max(Math.min(x2, a2) - Math.max(x1, a1), 0) * Math.max(Math.min(y2, b2) - Math.max(y1, b1), 0);
        const union = area + Math.max(a2 - a1, 0) * Math.max(b2 - b1, 0) - inter;
        return union > 0 && inter > suppressIou * union;
      });
      if (!dup) kept.push(i);
    }
    return kept.sort((a, b) => a - b).map((i) => found[i]);
  };
  let canvas = null, raf = 0, alive = true, last = '';
  const place = (v) => {
    if (!canvas) {
      canvas = document.createElement('canvas');
      canvas.className = 'surglens-boxes';
      canvas.setAttribute('data-testid', 'surglensBoxes');
      canvas.style.cssText = 'position:absolute;pointer-events:none;z-index:1';
    }
    const host = v.parentElement;
    if (!host) return false;
    if (canvas.parentElement !== host) {
      if (getComputedStyle(host).position === 'static') host.style.position = 'relative';
      host.appendChild(canvas);
    }
    const w = v.clientWidth, h = v.clientHeight, dpr = window.devicePixelRatio || 1;
    canvas.style.left = v.offsetLeft + 'px';
    canvas.style.top = v.offsetTop + 'px';
    canvas.style.width = w + 'px';
    canvas.style.height = h + 'px';
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    return w > 0 && h > 0;
  };
  const draw = (v, t) => {
    const ctx = canvas.getContext('2d'), dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!tracks.length && !loose.t.length) { canvas.dataset.boxes = '0'; return; }
    const W = v.clientWidth, H = v.clientHeight, vw = v.videoWidth, vh = v.videoHeight;
    if (!vw || !vh) return;
    const s = Math.min(W / vw, H / vh), dw = vw * s, dh = vh * s, dx = (W - dw) / 2, dy = (H - dh) / 2;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.lineWidth = 2;
    ctx.font = '12px system-ui, sans-serif';
    ctx.textBaseline = 'top';
    const found = boxesAt(t);
    for (const [box, cls, id] of found) {
      const x1 = dx + box[0] / scale * dw, y1 = dy + box[1] / scale * dh;
      const x2 = dx + box[2] / scale * dw, y2 = dy + box[3] / scale * dh;
      const colour = (d.colours || [])[cls] || '#7f7f7f';
      ctx.strokeStyle = colour;
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      const label = ((d.names || [])[cls] || `class ${cls}`) + (id >= 0 ? ` #${id}` : '');
      const tw = ctx.measureText(label).width + 6, ty = y1 >= 16 ? y1 - 16 : y1;
      ctx.fillStyle = colour;
      ctx.fillRect(x1 - 1, ty, tw, 16);
      ctx.fillStyle = '#fff';
      ctx.fillText(label, x1 + 2, ty + 2);
    }
    canvas.dataset.boxes = String(found.length);
  };
  const frame = () => {
    if (!alive) return;
    const v = video();
    if (v) {
      const t = v.currentTime || 0;
      cursor.style.left = (100 * Math.min(t / duration(), 1)) + '%';
      timeText.textContent = clock(t);
      const p = phases.find((q) => q.s <= t && t < q.e);
      phaseText.textContent = p ? p.name : '';
      if (place(v)) {
        const key = `${t}|${v.clientWidth}x${v.clientHeight}|${v.videoWidth}`;
        if (key !== last) { last = key; draw(v, t); }
      }
    }
    raf = requestAnimationFrame(frame);
  };
  raf = requestAnimationFrame(frame);
  return () => { alive = false; cancelAnimationFrame(raf); if (canvas) canvas.remove(); };
}
"""


@st.cache_resource(show_spinner=False)
def _overlay_component():
    return st.components.v2.component("surglens.player_overlay", html=_HTML, css=_CSS, js=_JS)


def player_overlay(payload: dict[str, Any], boxes: bool, key: str = "player_overlay") -> None:
    """The phase strip under the player and, with `boxes`, the boxes of `payload` over the video."""
    data = dict(payload, on=bool(boxes))
    if not boxes:  # the strip only: no need to send every box
        data.update(tracks=[], loose={"t": [], "c": [], "p": [], "b": []})
    _overlay_component()(key=key, data=data)
