// Formatting for people: dates in the reader's locale, money in USD, metrics as percentages.
const dtf = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const df = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' });
const usd = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', maximumFractionDigits: 2 });
const num = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const int = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const pct = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });

export const when = (s) => (s ? dtf.format(new Date(s)) : '—');
const dshort = new Intl.DateTimeFormat(undefined, { weekday: 'short', month: 'short', day: 'numeric', timeZone: 'UTC' });
export const weekday = (s) => (s ? dshort.format(new Date(`${s.slice(0, 10)}T00:00:00Z`)) : '—');
export const day = (s) => (s ? df.format(new Date(`${s.slice(0, 10)}T00:00:00Z`)) : '—');
export const money = (n) => (n == null ? '—' : usd.format(Number(n)));
export const number = (n) => (n == null || Number.isNaN(Number(n)) ? '—' : num.format(Number(n)));
export const count = (n) => (n == null ? '—' : int.format(Number(n)));
export const percent = (n) => (n == null ? '—' : pct.format(Number(n)));
export const bytes = (n) => {
  if (n == null) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${num.format(v)} ${units[i]}`;
};
export const shortId = (id) => (id ? String(id).slice(0, 8) : '—');
export const duration = (a, b) => {
  if (!a) return '—';
  const ms = (b ? new Date(b) : new Date()) - new Date(a);
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 120) return `${num.format(s)} s`;
  return `${num.format(s / 60)} min`;
};
