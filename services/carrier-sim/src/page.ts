import type { Handset, ThreadEntry } from './handsets';
import type { Rule } from './rules';

export interface PageData {
  handsets: Handset[];
  totalHandsets: number;
  stats: Record<string, number>;
  rules: readonly Rule[];
  inboundUrl: string | undefined;
}

const MESSAGES_PER_HANDSET = 200;

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Safe for both element content and quoted attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (ch) => ESCAPES[ch]!);
}

function entryHtml(entry: ThreadEntry): string {
  const m = entry.message;
  const when = entry.direction === 'in' ? entry.message.receivedAt : entry.message.sentAt;
  const meta = entry.direction === 'in' ? `from ${escapeHtml(m.from)} · ${escapeHtml(entry.message.msgid)}` : `to ${escapeHtml(m.to)}`;
  const coding = m.coding === 1 ? 'GSM-7' : m.coding === 2 ? '8-bit' : 'UCS-2';
  return (
    `<li class="${entry.direction}"><div class="text">${escapeHtml(m.text)}</div>` +
    `<div class="meta">${meta} · ${m.segments} segment${m.segments === 1 ? '' : 's'} ${coding} · ` +
    `<time>${escapeHtml(when)}</time></div></li>`
  );
}

function lastSender(handset: Handset): string {
  for (let i = handset.thread.length - 1; i >= 0; i--) {
    const e = handset.thread[i]!;
    if (e.direction === 'in') return e.message.from;
  }
  return '';
}

function handsetHtml(handset: Handset): string {
  const entries: string[] = [];
  const thread = handset.thread;
  const stop = Math.max(0, thread.length - MESSAGES_PER_HANDSET);
  for (let i = thread.length - 1; i >= stop; i--) entries.push(entryHtml(thread[i]!));
  const more = stop > 0 ? `<p class="note">${stop} older messages not shown</p>` : '';
  return `<section class="handset">
<h2>${escapeHtml(handset.phone)}</h2>
<form class="reply" data-phone="${escapeHtml(handset.phone)}">
<input name="to" placeholder="to (sender)" value="${escapeHtml(lastSender(handset))}" required>
<input name="text" placeholder="reply as this handset, e.g. STOP" required autocomplete="off">
<button>Send</button><span class="error"></span>
</form>
<ol class="thread">${entries.join('')}</ol>${more}
</section>`;
}

export function renderPage(data: PageData): string {
  const stats = Object.entries(data.stats)
    .map(([k, v]) => `<span>${escapeHtml(k)} <b>${v}</b></span>`)
    .join(' ');
  const rules =
    data.rules.length === 0 ? 'none (everything is delivered)' : data.rules.map((r) => `${escapeHtml(r.match)} → ${escapeHtml(r.outcome)}`).join(', ');
  const hidden = data.totalHandsets - data.handsets.length;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Textloop carrier simulator</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; background: #f6f6f4; }
h1 { font-size: 1.3rem; margin: 0 0 .5rem; }
h2 { font-size: 1rem; margin: 0 0 .5rem; }
.bar { color: #555; margin-bottom: .3rem; }
.bar span { margin-right: .8rem; }
section { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: .8rem 1rem; margin: 1rem 0; max-width: 46rem; }
form { display: flex; gap: .4rem; margin-bottom: .6rem; flex-wrap: wrap; }
input { padding: .3rem .4rem; border: 1px solid #bbb; border-radius: 4px; }
input[name=text] { flex: 1; min-width: 12rem; }
.error { color: #b00; }
ol.thread { list-style: none; padding: 0; margin: 0; }
ol.thread li { margin: .35rem 0; padding: .4rem .6rem; border-radius: 8px; max-width: 85%; white-space: pre-wrap; word-break: break-word; }
li.in { background: #e9eef8; }
li.out { background: #dff3df; margin-left: auto !important; }
.meta { font-size: .75rem; color: #666; margin-top: .2rem; white-space: normal; }
.note { color: #777; font-size: .8rem; }
</style>
</head>
<body>
<h1>Textloop carrier simulator</h1>
<div class="bar">${stats}</div>
<div class="bar">Rules: ${rules}</div>
<div class="bar">Replies go to: ${data.inboundUrl ? escapeHtml(data.inboundUrl) : '<i>not configured</i>'} · <a href="">refresh</a></div>
<section>
<h2>Text in from any number</h2>
<form class="reply" data-phone="">
<input name="phone" placeholder="+15551234567" required>
<input name="to" placeholder="to (sender)" required>
<input name="text" placeholder="message" required autocomplete="off">
<button>Send</button><span class="error"></span>
</form>
</section>
${data.handsets.length === 0 ? '<p class="note">No handset has received a message yet.</p>' : ''}
${data.handsets.map(handsetHtml).join('\n')}
${hidden > 0 ? `<p class="note">${hidden} less recently active handsets not shown.</p>` : ''}
<script>
for (const form of document.querySelectorAll('form.reply')) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const error = form.querySelector('.error');
    const phone = form.dataset.phone || form.elements.phone.value;
    try {
      const res = await fetch('api/handsets/' + encodeURIComponent(phone.trim()) + '/reply', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ to: form.elements.to.value, text: form.elements.text.value }),
      });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        error.textContent = body.error || ('HTTP ' + res.status);
        return;
      }
      location.reload();
    } catch (err) {
      error.textContent = String(err);
    }
  });
}
</script>
</body>
</html>
`;
}
