#!/usr/bin/env node
// tsa.mjs — independent check of gmca's RFC 3161 time-stamp tokens with sm-crypto.
//
//   node tsa.mjs <resp.der> <tsa-cert> <data-file>
//       walks the TimeStampResp (status granted, ContentInfo id-signedData,
//       SignedData, eContent id-ct-TSTInfo), checks that the TSTInfo's
//       messageImprint is SM3(data) and the messageDigest attribute is
//       SM3(TSTInfo), that the ESSCertIDv2 certHash is SM3(certificate), and
//       verifies the SignerInfo's SM2 signature (ID 1234567812345678) over the
//       signedAttrs sliced from the token and re-tagged as SET OF (0x31) with
//       the TSA certificate's public key.
// Exit 0 "OK ...", 1 "FAIL ...", 2 usage/parse error.

import { readFileSync } from 'node:fs';
import smCrypto from 'sm-crypto';

const { sm2, sm3 } = smCrypto;
const ID = '1234567812345678';

class Fail extends Error {}

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

function kids(buf, t) {
  const out = [];
  for (let off = t.start + t.hdr; off < t.end;) {
    const k = tlv(buf, off);
    out.push(k);
    off = k.end;
  }
  return out;
}

const hex = (buf, t) => buf.subarray(t.start, t.end).toString('hex');
const value = (buf, t) => buf.subarray(t.start + t.hdr, t.end);
const OID_SIGNED_DATA = '06092a864886f70d010702';
const OID_TSTINFO = '060b2a864886f70d0109100104';
const OID_MD = '06092a864886f70d010904';
const OID_SCV2 = '060b2a864886f70d010910022f';
const OID_SM3 = '06082a811ccf55018311';

function der(path) {
  let b = readFileSync(path);
  const text = b.toString('latin1');
  if (text.includes('-----BEGIN')) {
    b = Buffer.from(text.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  }
  return b;
}

function certPubHex(c) {
  const tbs = kids(c, kids(c, tlv(c, 0))[0]);
  const fields = tbs[0].tag === 0xa0 ? tbs.slice(1) : tbs;
  const bits = kids(c, fields[5])[1];
  return c.subarray(bits.start + bits.hdr + 1, bits.end).toString('hex');
}

function check(respPath, certPath, dataPath) {
  const buf = readFileSync(respPath);
  const resp = tlv(buf, 0);
  if (resp.end !== buf.length) throw new Fail('trailing bytes');
  const [status, token] = kids(buf, resp);
  const st = kids(buf, status)[0];
  if (hex(buf, st) !== '020100') throw new Fail(`status is not granted: ${hex(buf, st)}`);
  if (!token) throw new Fail('no timeStampToken');
  const [ctype, ctx] = kids(buf, token);
  if (hex(buf, ctype) !== OID_SIGNED_DATA) throw new Fail('token is not id-signedData');
  const sd = kids(buf, kids(buf, ctx)[0]);
  if (hex(buf, sd[0]) !== '020103') throw new Fail('SignedData version is not 3');
  const [etype, econtent] = kids(buf, sd[2]);
  if (hex(buf, etype) !== OID_TSTINFO) throw new Fail('eContentType is not id-ct-TSTInfo');
  const tst = value(buf, kids(buf, econtent)[0]);
  // TSTInfo: version, policy, messageImprint { alg, hashedMessage }, ...
  const t = kids(tst, tlv(tst, 0));
  const [malg, mval] = kids(tst, t[2]);
  if (hex(tst, kids(tst, malg)[0]) !== OID_SM3) throw new Fail('imprint is not SM3');
  const imprint = value(tst, mval).toString('hex');
  const want = sm3(Array.from(readFileSync(dataPath)));
  if (imprint !== want) throw new Fail(`imprint ${imprint} is not SM3(data) ${want}`);

  const cert = der(certPath);
  const si = kids(buf, kids(buf, sd[sd.length - 1])[0]);
  const attrs = si.find((k) => k.tag === 0xa0);
  if (!attrs) throw new Fail('no signedAttrs');
  let md = null;
  let certHash = null;
  for (const a of kids(buf, attrs)) {
    const [type, values] = kids(buf, a);
    const v = kids(buf, values)[0];
    if (hex(buf, type) === OID_MD) md = value(buf, v).toString('hex');
    if (hex(buf, type) === OID_SCV2) {
      const id = kids(buf, kids(buf, kids(buf, v)[0])[0]); // certs[0]: ESSCertIDv2
      const [alg, h] = id[0].tag === 0x30 ? [id[0], id[1]] : [null, id[0]];
      if (!alg || hex(buf, kids(buf, alg)[0]) !== OID_SM3) throw new Fail('ESSCertIDv2 is not SM3');
      certHash = value(buf, h).toString('hex');
    }
  }
  if (md !== sm3(Array.from(tst))) throw new Fail('messageDigest is not SM3(TSTInfo)');
  if (certHash !== sm3(Array.from(cert))) throw new Fail('ESSCertIDv2 certHash is not SM3(cert)');
  const tbs = Buffer.from(buf.subarray(attrs.start, attrs.end));
  tbs[0] = 0x31;
  const sigT = si[si.indexOf(attrs) + 2];
  const ok = sm2.doVerifySignature(Array.from(tbs), value(buf, sigT).toString('hex'),
    certPubHex(cert), { der: true, hash: true, userId: ID });
  if (!ok) throw new Fail('sm-crypto: SignerInfo signature does not verify');
  return 'time-stamp token: imprint, messageDigest, ESSCertIDv2 and SM2 signature';
}

const args = process.argv.slice(2);
if (args.length !== 3) {
  console.error('usage: node tsa.mjs <resp.der> <tsa-cert> <data-file>');
  process.exit(2);
}
try {
  console.log(`OK ${check(...args)}`);
} catch (e) {
  if (e instanceof Fail) {
    console.log(`FAIL ${e.message}`);
    process.exit(1);
  }
  console.error(`error: ${e.message}`);
  process.exit(2);
}
