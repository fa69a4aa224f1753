// A small hand-written SVG: RSS (MB) of each process over the soak's samples, one line each.
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
const esc = (s) =>
  String(s).replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]);

/** `samples`: [{t (s), phase, rss_mb: {name: MB}}]. */
export function rssSvg(samples, title) {
  const W = 900;
  const H = 420;
  const m = { l: 60, r: 170, t: 40, b: 45 };
  const names = [...new Set(samples.flatMap((s) => Object.keys(s.rss_mb)))];
  const tMax = Math.max(1, ...samples.map((s) => s.t));
  const vMax = Math.max(
    1,
    ...samples.flatMap((s) => Object.values(s.rss_mb).filter((v) => typeof v === 'number')),
  );
  const step = [50, 100, 200, 250, 500, 1000, 2000].find((x) => vMax / x <= 8) ?? 5000;
  const yTop = Math.ceil(vMax / step) * step;
  const x = (t) => m.l + (t / tMax) * (W - m.l - m.r);
  const y = (v) => H - m.b - (v / yTop) * (H - m.t - m.b);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
  ];
  for (let v = 0; v <= yTop; v += step) {
    out.push(
      `<line x1="${m.l}" x2="${W - m.r}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${m.l - 6}" y="${y(v) + 4}" text-anchor="end">${v}</text>`,
    );
  }
  const tStep = [10, 15, 30, 60, 120, 300].find((s) => tMax / s <= 10) ?? 600;
  for (let t = 0; t <= tMax; t += tStep) {
    out.push(`<text x="${x(t)}" y="${H - m.b + 16}" text-anchor="middle">${t}</text>`);
  }
  // The drain: where the load phase ends.
  const drain = samples.find((s) => s.phase === 'drain' || s.phase === 'drained');
  if (drain) {
    out.push(
      `<line x1="${x(drain.t)}" x2="${x(drain.t)}" y1="${m.t}" y2="${H - m.b}" stroke="#999" stroke-dasharray="4 4"/>`,
      `<text x="${x(drain.t) + 4}" y="${m.t + 12}" fill="#666">drain</text>`,
    );
  }
  out.push(
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 8}" text-anchor="middle">seconds since start</text>`,
    `<text x="14" y="${(m.t + H - m.b) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(m.t + H - m.b) / 2})">RSS (MB)</text>`,
    `<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#333"/>`,
  );
  names.forEach((name, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = samples
      .filter((s) => typeof s.rss_mb[name] === 'number')
      .map((s) => `${x(s.t).toFixed(1)},${y(s.rss_mb[name]).toFixed(1)}`);
    if (pts.length > 0)
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`);
    const ly = m.t + 10 + i * 18;
    out.push(
      `<line x1="${W - m.r + 12}" x2="${W - m.r + 32}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"/>`,
      `<text x="${W - m.r + 38}" y="${ly + 4}">${esc(name)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
