// The certificate search page (CPS §1.6.1, §4.6.3): searches GET /certs,
// lists /repository.json (CA certificates, CRLs, OCSP, CPS), in Chinese or
// English. Everything from the server goes into the page as text, never as
// markup; links are the server's own paths (or an http(s) CPS address).
'use strict';

const TEXT = {
  zh: {
    title: '证书查询', search: '查询证书', cn: '名称 (CN)', o: '单位 (O)', serial: '序列号',
    status: '状态', type: '证书类型', any: '全部', valid: '有效', revoked: '已撤销',
    expired: '已过期', go: '查询', results: '查询结果', subject: '主题', validity: '有效期',
    download: '下载', prev: '上一页', next: '下一页', cas: 'CA 证书与证书撤销列表', ca: 'CA',
    cacert: 'CA 证书', crl: '证书撤销列表 (CRL)', services: '服务地址与业务规则',
    ocsp: '在线证书状态查询 (OCSP)', cps: '电子认证业务规则 (CPS)', pubkey: '公钥',
    delta: '增量 CRL', none: '无', found: (n, a, b) => `共 ${n} 张证书，显示第 ${a}–${b} 张`,
    nothing: '没有找到符合条件的证书', more: '（仅统计了前一部分，请缩小查询范围）',
    error: '查询失败：', since: '撤销于', reason: '原因', to: '至', document: '文档',
    intro: '查询本认证机构签发的证书及其状态，下载证书、公钥、CA 证书和证书撤销列表。',
    footer: '证书、证书状态和信息库中的信息不属于保密信息（CPS 8.3.2）；本页不显示身份证件号码等个人隐私信息。',
    other: 'English', otherLang: 'en', htmlLang: 'zh-CN',
  },
  en: {
    title: 'Certificate search', search: 'Search certificates', cn: 'Name (CN)',
    o: 'Organisation (O)', serial: 'Serial number', status: 'Status', type: 'Type', any: 'Any',
    valid: 'Valid', revoked: 'Revoked', expired: 'Expired', go: 'Search', results: 'Results',
    subject: 'Subject', validity: 'Validity', download: 'Download', prev: 'Previous',
    next: 'Next', cas: 'CA certificates and CRLs', ca: 'CA', cacert: 'CA certificate',
    crl: 'Certificate revocation list (CRL)', services: 'Service addresses and practice statement',
    ocsp: 'Online certificate status (OCSP)', cps: 'Certification practice statement (CPS)',
    pubkey: 'public key', delta: 'delta CRL', none: 'none',
    found: (n, a, b) => `${n} certificates, showing ${a}–${b}`,
    nothing: 'No certificate matches', more: ' (only the first part was counted; narrow the search)',
    error: 'Search failed: ', since: 'revoked', reason: 'reason', to: 'to', document: 'document',
    intro: 'Look up the certificates this CA issued and their status; download certificates, public keys, CA certificates and CRLs.',
    footer: 'Certificates, their status and the repository are not confidential (CPS 8.3.2); this page shows no identity numbers or other private data.',
    other: '中文', otherLang: 'zh', htmlLang: 'en',
  },
};
const PAGE = 20;
let lang = localStorage.getItem('gmca.lang') === 'en' ? 'en' : 'zh';
let last = null; // the last search: {params, offset, reply}
let repo = null;

const $ = (id) => document.getElementById(id);
const t = (k) => TEXT[lang][k];

function el(tag, text, attrs) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

// Only the server's own paths, or an http(s) address for the CPS.
function link(href, text, download) {
  const ok = typeof href === 'string' && (/^\/[A-Za-z0-9._\/-]*$/.test(href) || /^https?:\/\//.test(href));
  const a = el('a', text, ok ? { href } : {});
  if (download && ok) a.setAttribute('download', '');
  return a;
}

function day(iso) { return iso ? iso.slice(0, 10) : ''; }

function applyLang() {
  document.documentElement.lang = t('htmlLang');
  document.title = `${t('title')} — gmca`;
  for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  $('lang').textContent = t('other');
  $('lang').lang = t('otherLang') === 'en' ? 'en' : 'zh-CN';
  if (last) render(last);
  if (repo) renderRepo(repo);
}

function statusCell(r) {
  const td = el('td');
  td.append(el('span', t(r.status), { class: `status ${r.status}`, 'data-status': r.status }));
  if (r.status === 'revoked') {
    td.append(el('div', `${t('since')} ${day(r.revoked_at)}`, { class: 'revoked-at' }));
    if (r.reason) td.append(el('div', `${t('reason')}: ${r.reason}`, { class: 'reason' }));
  }
  return td;
}

function row(r) {
  const tr = el('tr', null, { 'data-serial': r.serial });
  tr.append(el('td', r.serial, { class: 'serial' }));
  const subj = el('td');
  subj.append(el('div', r.cn || r.subject, { class: 'cn' }));
  subj.append(el('div', r.subject, { class: 'dn' }));
  tr.append(subj, el('td', r.type), el('td', `${day(r.not_before)} ${t('to')} ${day(r.not_after)}`));
  tr.append(statusCell(r));
  const dl = el('td', null, { class: 'links' });
  dl.append(link(r.links.pem, 'PEM', true), ' ', link(r.links.der, 'DER', true), ' ',
    link(r.links.pubkey, t('pubkey'), true));
  tr.append(dl);
  return tr;
}

function render(s) {
  const body = $('results').tBodies[0];
  body.replaceChildren(...s.reply.results.map(row));
  const n = s.reply.results.length;
  $('results').hidden = n === 0;
  $('summary').textContent = n === 0 ? t('nothing')
    : t('found')(s.reply.total, s.offset + 1, s.offset + n) + (s.reply.total_capped ? t('more') : '');
  $('pager').hidden = s.reply.total <= PAGE;
  $('prev').disabled = s.offset === 0;
  $('next').disabled = s.offset + n >= s.reply.total;
}

async function search(params, offset) {
  const q = new URLSearchParams(params);
  q.set('limit', String(PAGE));
  q.set('offset', String(offset));
  $('summary').textContent = '…';
  try {
    const res = await fetch(`/certs?${q}`, { headers: { Accept: 'application/json' } });
    const reply = await res.json();
    if (!res.ok) throw new Error(reply.message || res.status);
    last = { params, offset, reply };
    render(last);
  } catch (err) {
    last = null;
    $('results').hidden = true;
    $('pager').hidden = true;
    $('summary').textContent = t('error') + err.message;
  }
}

function formParams() {
  const p = {};
  for (const k of ['cn', 'o', 'serial', 'status', 'type']) {
    const v = $(`f-${k}`).value.trim();
    if (v) p[k] = v;
  }
  return p;
}

function renderRepo(r) {
  const body = $('cas').tBodies[0];
  body.replaceChildren(...r.cas.map((ca) => {
    const tr = el('tr', null, { 'data-ca': ca.name });
    const crl = el('td');
    if (ca.crl) crl.append(link(ca.crl, `${ca.name}.crl (#${ca.crl_number}, ${day(ca.this_update)})`, true));
    else crl.append(t('none'));
    if (ca.delta_crl) crl.append(' ', link(ca.delta_crl, t('delta'), true));
    tr.append(el('td', ca.name), el('td', ca.subject), el('td'), crl);
    tr.cells[2].append(link(ca.certificate, `${ca.name}.crt`, true));
    return tr;
  }));
  $('ocsp').replaceChildren(r.ocsp ? el('code', r.ocsp) : t('none'));
  const cps = $('cps');
  cps.replaceChildren(link(r.cps, r.cps));
  if (r.cps_document) cps.append(' ', link(r.cps_document, `(${t('document')})`));
}

async function loadRepo() {
  try {
    const res = await fetch('/repository.json');
    if (res.ok) { repo = await res.json(); renderRepo(repo); }
  } catch (err) { /* the search still works */ }
}

document.addEventListener('DOMContentLoaded', () => {
  $('search').addEventListener('submit', (ev) => { ev.preventDefault(); search(formParams(), 0); });
  $('prev').addEventListener('click', () => last && search(last.params, Math.max(0, last.offset - PAGE)));
  $('next').addEventListener('click', () => last && search(last.params, last.offset + PAGE));
  $('lang').addEventListener('click', () => {
    lang = lang === 'zh' ? 'en' : 'zh';
    localStorage.setItem('gmca.lang', lang);
    applyLang();
  });
  applyLang();
  loadRepo();
});
