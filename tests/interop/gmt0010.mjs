#!/usr/bin/env node
// gmt0010.mjs — independent check of gmca's GM/T 0010 messages with sm-crypto.
//
//   node gmt0010.mjs signed   <msg.der> <signer-cert> <content-file>
//       verifies the SignerInfo's SM2 signature (ID 1234567812345678) over the
//       DER of the authenticatedAttributes sliced from the message and re-tagged
//       as SET OF (0x31), checks messageDigest = SM3(content) with sm-crypto.
//   node gmt0010.mjs enveloped <msg.der> <recipient-key.pem> <expected-content>
//       decrypts the recipient's encryptedKey (DER SM2Cipher turned
//       into C1C3C2 hex) with sm-crypto's sm2.doDecrypt, then the SM4-CBC
//       content with sm-crypto's sm4, and compares with the expected file.
//   node gmt0010.mjs sigenv <msg.der> <recipient-key.pem> <signer-cert> <expected-content>
//       a SignedAndEnvelopedData: opens it as above, then verifies the
//       SignerInfo over the decrypted content as for "signed".
//   node gmt0010.mjs rawverify <sig.der> <cert> <data>     sm-crypto verifies a DER SM2Signature
//   node gmt0010.mjs rawsign <key.pem> <data> <out.der>    sm-crypto signs (der, hash, userId)
//   node gmt0010.mjs rawdecrypt <ct> <key.pem> <expected> <der|c1c3c2>
//   node gmt0010.mjs rawencrypt <cert> <data> <out> <der|c1c3c2>   sm-crypto mode 1 (C1C3C2)
// Exit 0 "OK ...", 1 "FAIL ...", 2 usage/parse error.

import { readFileSync, writeFileSync } from 'node:fs';
import smCrypto from 'sm-crypto';

const { sm2, sm3, sm4 } = smCrypto;
const ID = '1234567812345678';

class Fail extends Error {}

// One TLV at off: { tag, start, hdr, len, end }; definite lengths only.
function tlv(buf, off) {
  if (off + 2 > buf.length) throw new Error(`truncated TLV at ${off}`);
  const tag = buf[off];
  let len = buf[off + 1];
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 4) throw new Error(`bad length at ${off}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[off + 2 + i];
    hdr += n;
  }
  const end = off + hdr + len;
  if (end > buf.length) throw new Error(`TLV past the end at ${off}`);
  return { tag, start: off, hdr, len, end };
}

// Children of a constructed TLV.
function kids(buf, t) {
  const out = [];
  for (let off = t.start + t.hdr; off < t.end;) {
    const k = tlv(buf, off);
    out.push(k);
    off = k.end;
  }
  return out;
}

function oidHex(buf, t) { return buf.subarray(t.start, t.end).toString('hex'); }
const OID_SIGNED = '060a2a811ccf550601040202';
const OID_ENVELOPED = '060a2a811ccf550601040203';
const OID_SIGENV = '060a2a811ccf550601040204';
const OID_MD = '06092a864886f70d010904';

// The SignedData or EnvelopedData SEQUENCE inside the outer ContentInfo.
function inner(buf, wantOid) {
  const ci = tlv(buf, 0);
  if (ci.end !== buf.length) throw new Error('trailing bytes');
  const [type, ctx] = kids(buf, ci);
  if (oidHex(buf, type) !== wantOid) throw new Fail(`outer contentType is ${oidHex(buf, type)}`);
  if (ctx.tag !== 0xa0) throw new Fail('no [0] content');
  return kids(buf, ctx)[0];
}

// Public key hex (04||x||y) from a PEM or DER certificate, by walking the TBS.
function certPubHex(path) {
  let der = readFileSync(path);
  const text = der.toString('latin1');
  if (text.includes('-----BEGIN')) {
    der = Buffer.from(text.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  }
  const tbs = kids(der, kids(der, tlv(der, 0))[0]);
  const fields = tbs[0].tag === 0xa0 ? tbs.slice(1) : tbs;
  const spki = kids(der, fields[5]);
  const bits = spki[1];
  return der.subarray(bits.start + bits.hdr + 1, bits.end).toString('hex');
}

function signed(msgPath, certPath, contentPath) {
  const buf = readFileSync(msgPath);
  const sd = kids(buf, inner(buf, OID_SIGNED));
  return verifySigner(buf, sd[sd.length - 1], readFileSync(contentPath), certPath);
}

function verifySigner(buf, signers, content, certPath) {
  const si = kids(buf, kids(buf, signers)[0]);
  const attrs = si.find((k) => k.tag === 0xa0);
  if (!attrs) throw new Fail('no authenticatedAttributes');
  // The signed bytes: the [0] IMPLICIT field with its tag replaced by SET (0x31).
  const tbs = Buffer.from(buf.subarray(attrs.start, attrs.end));
  tbs[0] = 0x31;
  let md = null;
  for (const a of kids(buf, attrs)) {
    const [type, values] = kids(buf, a);
    if (oidHex(buf, type) === OID_MD) {
      const v = kids(buf, values)[0];
      md = buf.subarray(v.start + v.hdr, v.end).toString('hex');
    }
  }
  const want = sm3(Array.from(content));
  if (md !== want) throw new Fail(`messageDigest ${md} is not SM3(content) ${want}`);
  const sigT = si[si.indexOf(attrs) + 2];
  const sig = buf.subarray(sigT.start + sigT.hdr, sigT.end).toString('hex');
  const ok = sm2.doVerifySignature(Array.from(tbs), sig, certPubHex(certPath),
    { der: true, hash: true, userId: ID });
  if (!ok) throw new Fail('sm-crypto: SignerInfo signature does not verify');
  return 'SignerInfo signature and messageDigest';
}

// DER INTEGER bytes as 32-byte big-endian hex.
function int32(buf, t) {
  let v = buf.subarray(t.start + t.hdr, t.end);
  while (v.length > 32 && v[0] === 0) v = v.subarray(1);
  if (v.length > 32) throw new Fail('coordinate over 32 bytes');
  return Buffer.concat([Buffer.alloc(32 - v.length), v]).toString('hex');
}

// d of an unencrypted PKCS#8 PEM key: PrivateKeyInfo { 0, alg, OCTET STRING { ECPrivateKey { 1, d } } }.
function privHex(path) {
  const text = readFileSync(path, 'latin1');
  const der = Buffer.from(text.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const pki = kids(der, tlv(der, 0));
  const ec = kids(der, tlv(der, pki[2].start + pki[2].hdr));
  const d = ec[1];
  return der.subarray(d.start + d.hdr, d.end).toString('hex').padStart(64, '0');
}

function enveloped(msgPath, keyPath, expectPath) {
  const buf = readFileSync(msgPath);
  const ed = kids(buf, inner(buf, OID_ENVELOPED));
  const pt = openEnvelope(buf, ed[1], ed[2], privHex(keyPath));
  if (!pt.equals(readFileSync(expectPath))) throw new Fail('SM4-CBC plaintext differs');
  return 'encryptedKey (SM2) and SM4-CBC content';
}

function sigenv(msgPath, keyPath, certPath, expectPath) {
  const buf = readFileSync(msgPath);
  const sed = kids(buf, inner(buf, OID_SIGENV));
  if (sed.length < 5) throw new Fail('SignedAndEnvelopedData has too few fields');
  const pt = openEnvelope(buf, sed[1], sed[3], privHex(keyPath));
  if (!pt.equals(readFileSync(expectPath))) throw new Fail('SM4-CBC plaintext differs');
  return 'encryptedKey, SM4-CBC content and ' +
    verifySigner(buf, sed[sed.length - 1], pt, certPath);
}

// SM2Cipher DER TLV to sm-crypto's C1C3C2 hex (no 04 prefix).
function cipherHex(buf, t) {
  const [x, y, c3, c2] = kids(buf, t);
  return int32(buf, x) + int32(buf, y) +
    buf.subarray(c3.start + c3.hdr, c3.end).toString('hex') +
    buf.subarray(c2.start + c2.hdr, c2.end).toString('hex');
}

// The content of an enveloped part: recipient infos recips, EncryptedContentInfo eciT.
function openEnvelope(buf, recips, eciT, d) {
  // RecipientInfos are a DER SET (sorted): use the one the key opens.
  let key = null;
  for (const r of kids(buf, recips)) {
    const ek = kids(buf, r)[3];
    const c1c3c2 = cipherHex(buf, tlv(buf, ek.start + ek.hdr));
    // sm-crypto: cipherMode 1 = C1C3C2, input without the 04 prefix; [] when C3 fails.
    const k = sm2.doDecrypt(c1c3c2, d, 1, { output: 'array' });
    if (k && k.length === 16) key = k;
  }
  if (!key) throw new Fail('sm-crypto: no encryptedKey decrypts to a 16-byte key with this key');
  const eci = kids(buf, eciT);
  const alg = kids(buf, eci[1]);
  const iv = buf.subarray(alg[1].start + alg[1].hdr, alg[1].end).toString('hex');
  const ct = buf.subarray(eci[2].start + eci[2].hdr, eci[2].end).toString('hex');
  const pt = sm4.decrypt(ct, Buffer.from(key).toString('hex'),
    { mode: 'cbc', iv, padding: 'pkcs#7', output: 'array' });
  return Buffer.from(pt);
}

function rawverify(sigPath, certPath, dataPath) {
  const ok = sm2.doVerifySignature(Array.from(readFileSync(dataPath)),
    readFileSync(sigPath).toString('hex'), certPubHex(certPath), { der: true, hash: true, userId: ID });
  if (!ok) throw new Fail('sm-crypto: the raw SM2Signature does not verify');
  return 'DER SM2Signature with ID';
}

function rawsign(keyPath, dataPath, outPath) {
  const d = privHex(keyPath);
  const pub = sm2.getPublicKeyFromPrivateKey(d);
  const sig = sm2.doSignature(Array.from(readFileSync(dataPath)), d,
    { der: true, hash: true, publicKey: pub, userId: ID });
  writeFileSync(outPath, Buffer.from(sig, 'hex'));
  return 'signed';
}

function rawdecrypt(ctPath, keyPath, expectPath, form) {
  const buf = readFileSync(ctPath);
  let hex;
  if (form === 'der') {
    const t = tlv(buf, 0);
    if (t.end !== buf.length) throw new Fail('trailing bytes after SM2Cipher');
    hex = cipherHex(buf, t);
  } else {
    if (buf[0] !== 4) throw new Fail('C1C3C2 does not start with 04');
    hex = buf.subarray(1).toString('hex');
  }
  const pt = sm2.doDecrypt(hex, privHex(keyPath), 1, { output: 'array' });
  if (!pt || !Buffer.from(pt).equals(readFileSync(expectPath))) throw new Fail('sm-crypto: SM2 plaintext differs');
  return `SM2 ${form} decrypted`;
}

// A DER INTEGER of a 32-byte unsigned big-endian value, minimal.
function derInt(b) {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0 && b[i + 1] < 0x80) i++;
  let v = b.subarray(i);
  if (v[0] & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return derTlv(0x02, v);
}

function derTlv(tag, v) {
  let len;
  if (v.length < 0x80) len = Buffer.from([v.length]);
  else if (v.length < 0x100) len = Buffer.from([0x81, v.length]);
  else if (v.length < 0x10000) len = Buffer.from([0x82, v.length >> 8, v.length & 0xff]);
  else len = Buffer.from([0x83, v.length >> 16, (v.length >> 8) & 0xff, v.length & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, v]);
}

function rawencrypt(certPath, dataPath, outPath, form) {
  const ct = Buffer.from(sm2.doEncrypt(Array.from(readFileSync(dataPath)), certPubHex(certPath), 1), 'hex');
  if (form === 'der') {
    const body = Buffer.concat([derInt(ct.subarray(0, 32)), derInt(ct.subarray(32, 64)),
      derTlv(0x04, ct.subarray(64, 96)), derTlv(0x04, ct.subarray(96))]);
    writeFileSync(outPath, derTlv(0x30, body));
  } else {
    writeFileSync(outPath, Buffer.concat([Buffer.from([4]), ct]));
  }
  return `SM2 ${form} encrypted`;
}

const [kind, ...args] = process.argv.slice(2);
const fns = { signed, enveloped, sigenv, rawverify, rawsign, rawdecrypt, rawencrypt };
if (!fns[kind] || args.length !== fns[kind].length) {
  console.error('usage: node gmt0010.mjs signed|enveloped|sigenv|rawverify|rawsign|rawdecrypt|rawencrypt <files>');
  process.exit(2);
}
try {
  console.log(`OK ${kind}: ${fns[kind](...args)}`);
} catch (e) {
  console.log(`FAIL ${kind}: ${e.message}`);
  process.exit(e instanceof Fail ? 1 : 2);
}
