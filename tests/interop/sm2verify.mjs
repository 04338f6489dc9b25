#!/usr/bin/env node
// sm2verify.mjs — independent SM2-with-SM3 signature verifier for gmca interop tests.
//
// Checks certificates, PKCS#10 CSRs and CRLs with an SM2 implementation that
// is not ours and not OpenSSL's: sm-crypto (pure JS) for SM2/SM3, and
// @peculiar/asn1-* for ASN.1 field access.  The exact to-be-signed bytes are
// sliced from the original DER with a small TLV reader (never re-encoded).
//
// Usage: node sm2verify.mjs [--id <string>] <cert|csr|crl|ocsp> <file> [issuer-file]
//   file / issuer-file: DER or PEM.
//   cert, crl: issuer-file is the issuer certificate; may be omitted for a
//              self-signed certificate (its own key is used).
//   csr:       no issuer-file (the CSR's own key is used).
//   ocsp:      file is a DER OCSPResponse (RFC 6960 §4.2.1) with status
//              successful; issuer-file is the certificate of the responder
//              that signed it, and the signature is checked over the raw
//              tbsResponseData bytes.
//   --id:      SM2 distinguishing ID (default "1234567812345678", GM/T 0009).
// Exit: 0 "OK <kind> <file>", 1 "FAIL <kind> <file>: <reason>", 2 usage/parse error.

import { readFileSync } from 'node:fs';
import smCrypto from 'sm-crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, CertificateList } from '@peculiar/asn1-x509';
import { CertificationRequest } from '@peculiar/asn1-csr';

const { sm2 } = smCrypto;

const OID_SM2_WITH_SM3 = '1.2.156.10197.1.501';
const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const OID_SM2_CURVE = '1.2.156.10197.1.301';
const DER_SM2_CURVE = '06082a811ccf5501822d'; // OBJECT IDENTIFIER 1.2.156.10197.1.301
const DEFAULT_ID = '1234567812345678';

const USAGE = 'usage: node sm2verify.mjs [--id <string>] <cert|csr|crl|ocsp> <file> [issuer-file]';

class UsageError extends Error {}   // -> exit 2
class VerifyFail extends Error {}   // -> exit 1

// ---------------------------------------------------------------- input

function loadDer(path, what) {
  let buf;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new UsageError(`cannot read ${what} ${path}: ${e.message}`);
  }
  const text = buf.toString('latin1');
  if (text.includes('-----BEGIN')) {
    const m = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(text);
    if (!m) throw new UsageError(`${what} ${path}: malformed PEM`);
    const b64 = m[2].replace(/[^A-Za-z0-9+/=]/g, '');
    buf = Buffer.from(b64, 'base64');
    if (buf.length === 0) throw new UsageError(`${what} ${path}: empty PEM body`);
  }
  return buf;
}

// ---------------------------------------------------------------- tiny DER TLV reader

// Reads one TLV at `off` in `buf` (a Buffer).  Returns { tag, start, hdrLen,
// len, end } where the element occupies buf[start, end) and its value
// buf[start+hdrLen, end).  Only single-byte tags and definite DER lengths.
function readTlv(buf, off, limit = buf.length) {
  if (off + 2 > limit) throw new UsageError(`DER: truncated header at offset ${off}`);
  const tag = buf[off];
  if ((tag & 0x1f) === 0x1f) throw new UsageError(`DER: multi-byte tag at offset ${off}`);
  let p = off + 1;
  let len = buf[p++];
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new UsageError(`DER: indefinite length at offset ${off}`);
    if (n > 4) throw new UsageError(`DER: length too large at offset ${off}`);
    if (p + n > limit) throw new UsageError(`DER: truncated length at offset ${off}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++];
    if (len < 0x80 || buf[off + 2] === 0) throw new UsageError(`DER: non-minimal length at offset ${off}`);
  }
  const end = p + len;
  if (end > limit) throw new UsageError(`DER: element at offset ${off} overruns its container`);
  return { tag, start: off, hdrLen: p - off, len, end };
}

function children(buf, tlv) {
  const out = [];
  let p = tlv.start + tlv.hdrLen;
  while (p < tlv.end) {
    const c = readTlv(buf, p, tlv.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

const slice = (buf, tlv) => buf.subarray(tlv.start, tlv.end);
const value = (buf, tlv) => buf.subarray(tlv.start + tlv.hdrLen, tlv.end);

// Splits a signed object SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING }.
function splitSigned(der, what) {
  const outer = readTlv(der, 0);
  if (outer.tag !== 0x30) throw new UsageError(`${what}: outer element is not a SEQUENCE`);
  if (outer.end !== der.length) throw new UsageError(`${what}: ${der.length - outer.end} trailing bytes after the outer SEQUENCE`);
  const parts = children(der, outer);
  if (parts.length !== 3) throw new UsageError(`${what}: outer SEQUENCE has ${parts.length} elements, expected 3`);
  const [tbs, alg, sig] = parts;
  if (tbs.tag !== 0x30 || alg.tag !== 0x30 || sig.tag !== 0x03) {
    throw new UsageError(`${what}: expected SEQUENCE, SEQUENCE, BIT STRING`);
  }
  return { tbs, alg, sig, tbsElems: children(der, tbs) };
}

// ---------------------------------------------------------------- checks

function hex(ab) {
  return Buffer.from(ab instanceof ArrayBuffer ? new Uint8Array(ab) : ab).toString('hex');
}

function parseWith(cls, der, what) {
  try {
    return AsnConvert.parse(der, cls);
  } catch (e) {
    throw new UsageError(`${what}: ASN.1 parse error: ${e.message}`);
  }
}

// AlgorithmIdentifier must be SM2-with-SM3; parameters absent or NULL.
function checkSigAlg(algId, where) {
  if (algId.algorithm !== OID_SM2_WITH_SM3) {
    throw new VerifyFail(`${where} is ${algId.algorithm}, expected SM2-with-SM3 ${OID_SM2_WITH_SM3}`);
  }
  const p = algId.parameters;
  if (p != null && p.byteLength !== 0 && hex(p) !== '0500') {
    throw new VerifyFail(`${where} has unexpected parameters ${hex(p)}`);
  }
}

// Raw algorithm-identifier bytes must agree between TBS and the outer wrapper.
function checkAlgBytesEqual(der, innerTlv, outerTlv) {
  if (!slice(der, innerTlv).equals(slice(der, outerTlv))) {
    throw new VerifyFail('signature algorithm inside the TBS differs from the outer signatureAlgorithm');
  }
}

// SubjectPublicKeyInfo -> uncompressed point hex "04||X||Y" (130 hex chars).
function sm2PublicKeyHex(spki, where) {
  const alg = spki.algorithm;
  if (alg.algorithm !== OID_EC_PUBLIC_KEY) {
    throw new VerifyFail(`${where} key algorithm is ${alg.algorithm}, expected id-ecPublicKey ${OID_EC_PUBLIC_KEY}`);
  }
  const params = alg.parameters ? hex(alg.parameters) : '';
  if (params !== DER_SM2_CURVE) {
    throw new VerifyFail(`${where} key curve parameter is ${params || '(absent)'}, expected OID ${OID_SM2_CURVE}`);
  }
  const pk = Buffer.from(new Uint8Array(spki.subjectPublicKey));
  if (pk.length !== 65 || pk[0] !== 0x04) {
    throw new VerifyFail(`${where} public key is not an uncompressed point (len ${pk.length}, first byte ${pk.length ? pk[0] : 'n/a'})`);
  }
  const pkHex = pk.toString('hex');
  if (!sm2.verifyPublicKey(pkHex)) throw new VerifyFail(`${where} public key is not a point on the SM2 curve`);
  return pkHex;
}

// BIT STRING (from raw DER, 0 unused bits) -> DER SEQUENCE{r,s} hex.
function signatureHex(der, sigTlv, libSig) {
  const v = value(der, sigTlv);
  if (v.length < 1 || v[0] !== 0) throw new VerifyFail('signature BIT STRING has unused bits');
  const sigBytes = v.subarray(1);
  if (libSig && !Buffer.from(new Uint8Array(libSig)).equals(sigBytes)) {
    throw new UsageError('internal: signature bytes from TLV reader and ASN.1 library disagree');
  }
  if (sigBytes.length < 8 || sigBytes[0] !== 0x30) throw new VerifyFail('signature value is not a DER SEQUENCE{r,s}');
  return sigBytes.toString('hex');
}

function sm2Verify(tbsBytes, sigHex, pubHex, id) {
  // Message must be passed as an array of bytes: sm-crypto treats a string
  // message as UTF-8 text.  The ID is passed explicitly (Z = SM3(ENTL||ID||...)).
  return sm2.doVerifySignature(Array.from(tbsBytes), sigHex, pubHex, { der: true, hash: true, userId: id });
}

// Element positions (raw TLVs) inside the TBS structures.
function certTbsPositions(der, elems) {
  let i = 0;
  if (elems[0] && elems[0].tag === 0xa0) i = 1; // [0] EXPLICIT version
  // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
  if (elems.length < i + 6) throw new UsageError('certificate TBS has too few elements');
  return { sigAlg: elems[i + 1], issuer: elems[i + 2], subject: elems[i + 4] };
}

function crlTbsPositions(der, elems) {
  let i = 0;
  if (elems[0] && elems[0].tag === 0x02) i = 1; // version INTEGER OPTIONAL
  if (elems.length < i + 3) throw new UsageError('CRL TBS has too few elements');
  return { sigAlg: elems[i], issuer: elems[i + 1] };
}

// Issuer certificate: parsed + raw subject bytes + public key hex.
function loadIssuer(path) {
  const der = loadDer(path, 'issuer certificate');
  const parts = splitSigned(der, `issuer certificate ${path}`);
  const cert = parseWith(Certificate, der, `issuer certificate ${path}`);
  const pos = certTbsPositions(der, parts.tbsElems);
  return {
    subject: slice(der, pos.subject),
    pubHex: sm2PublicKeyHex(cert.tbsCertificate.subjectPublicKeyInfo, 'issuer certificate'),
  };
}

function verifyCert(file, issuerFile, id) {
  const der = loadDer(file, 'certificate');
  const parts = splitSigned(der, `certificate ${file}`);
  const cert = parseWith(Certificate, der, `certificate ${file}`);
  const pos = certTbsPositions(der, parts.tbsElems);
  checkSigAlg(cert.signatureAlgorithm, 'signatureAlgorithm');
  checkSigAlg(cert.tbsCertificate.signature, 'tbsCertificate.signature');
  checkAlgBytesEqual(der, pos.sigAlg, parts.alg);
  const sigHex = signatureHex(der, parts.sig, cert.signatureValue);

  let issuer;
  if (issuerFile) {
    issuer = loadIssuer(issuerFile);
  } else {
    issuer = {
      subject: slice(der, pos.subject),
      pubHex: sm2PublicKeyHex(cert.tbsCertificate.subjectPublicKeyInfo, 'certificate (self-signed)'),
    };
  }
  if (!slice(der, pos.issuer).equals(issuer.subject)) {
    throw new VerifyFail(issuerFile
      ? 'issuer name does not equal the issuer certificate\'s subject (DER compare)'
      : 'not self-signed: issuer name differs from subject name and no issuer-file given');
  }
  if (!sm2Verify(slice(der, parts.tbs), sigHex, issuer.pubHex, id)) {
    throw new VerifyFail(`SM2 signature does not verify (id "${id}")`);
  }
}

function verifyCrl(file, issuerFile, id) {
  if (!issuerFile) throw new UsageError('crl needs an issuer-file (the issuing CA certificate)');
  const der = loadDer(file, 'CRL');
  const parts = splitSigned(der, `CRL ${file}`);
  const crl = parseWith(CertificateList, der, `CRL ${file}`);
  const pos = crlTbsPositions(der, parts.tbsElems);
  checkSigAlg(crl.signatureAlgorithm, 'signatureAlgorithm');
  checkSigAlg(crl.tbsCertList.signature, 'tbsCertList.signature');
  checkAlgBytesEqual(der, pos.sigAlg, parts.alg);
  const sigHex = signatureHex(der, parts.sig, crl.signature);
  const issuer = loadIssuer(issuerFile);
  if (!slice(der, pos.issuer).equals(issuer.subject)) {
    throw new VerifyFail('CRL issuer name does not equal the issuer certificate\'s subject (DER compare)');
  }
  if (!sm2Verify(slice(der, parts.tbs), sigHex, issuer.pubHex, id)) {
    throw new VerifyFail(`SM2 signature does not verify (id "${id}")`);
  }
}

function verifyCsr(file, issuerFile, id) {
  if (issuerFile) throw new UsageError('csr takes no issuer-file (it is verified with its own key)');
  const der = loadDer(file, 'CSR');
  const parts = splitSigned(der, `CSR ${file}`);
  const csr = parseWith(CertificationRequest, der, `CSR ${file}`);
  checkSigAlg(csr.signatureAlgorithm, 'signatureAlgorithm');
  const sigHex = signatureHex(der, parts.sig, csr.signature);
  const pubHex = sm2PublicKeyHex(csr.certificationRequestInfo.subjectPKInfo, 'CSR');
  if (!sm2Verify(slice(der, parts.tbs), sigHex, pubHex, id)) {
    throw new VerifyFail(`SM2 signature does not verify (id "${id}")`);
  }
}

// OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT
//   SEQUENCE { responseType OID, response OCTET STRING } OPTIONAL }; response holds
// BasicOCSPResponse ::= SEQUENCE { tbsResponseData, signatureAlgorithm, signature
//   BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }.
const DER_ID_PKIX_OCSP_BASIC = '06092b0601050507300101';
function verifyOcsp(file, issuerFile, id) {
  if (!issuerFile) throw new UsageError('ocsp needs an issuer-file (the responder certificate)');
  const der = loadDer(file, 'OCSP response');
  const outer = readTlv(der, 0);
  if (outer.tag !== 0x30 || outer.end !== der.length) throw new UsageError('OCSP response: not one SEQUENCE');
  const top = children(der, outer);
  if (top.length < 1 || top[0].tag !== 0x0a) throw new UsageError('OCSP response: no responseStatus');
  const status = value(der, top[0]);
  if (status.length !== 1 || status[0] !== 0) throw new VerifyFail(`responseStatus ${status.toString('hex')}, not successful`);
  if (top.length !== 2 || top[1].tag !== 0xa0) throw new VerifyFail('successful response without responseBytes');
  const rb = children(der, children(der, top[1])[0]);
  if (rb.length !== 2 || !slice(der, rb[0]).equals(Buffer.from(DER_ID_PKIX_OCSP_BASIC, 'hex')) || rb[1].tag !== 0x04) {
    throw new VerifyFail('responseType is not id-pkix-ocsp-basic');
  }
  const basic = value(der, rb[1]);
  const bt = readTlv(basic, 0);
  if (bt.tag !== 0x30 || bt.end !== basic.length) throw new UsageError('BasicOCSPResponse: not one SEQUENCE');
  const parts = children(basic, bt);
  if (parts.length < 3 || parts.length > 4 || parts[0].tag !== 0x30 || parts[1].tag !== 0x30 || parts[2].tag !== 0x03) {
    throw new UsageError('BasicOCSPResponse: expected SEQUENCE, SEQUENCE, BIT STRING [, [0]]');
  }
  const alg = slice(basic, parts[1]).toString('hex');
  const algOid = '06082a811ccf55018375';
  if (alg !== `300a${algOid}` && alg !== `300c${algOid}0500`) {
    throw new VerifyFail(`signatureAlgorithm ${alg} is not SM2-with-SM3`);
  }
  const sigHex = signatureHex(basic, parts[2], null);
  const responder = loadIssuer(issuerFile);
  if (!sm2Verify(slice(basic, parts[0]), sigHex, responder.pubHex, id)) {
    throw new VerifyFail(`SM2 signature does not verify (id "${id}")`);
  }
}

// ---------------------------------------------------------------- main

function main(argv) {
  let id = DEFAULT_ID;
  const pos = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--id') {
      if (i + 1 >= argv.length) throw new UsageError('--id needs a value');
      id = argv[++i];
    } else if (a.startsWith('--id=')) {
      id = a.slice(5);
    } else if (a === '-h' || a === '--help') {
      console.log(USAGE);
      return 0;
    } else {
      pos.push(a);
    }
  }
  if (pos.length < 2 || pos.length > 3) throw new UsageError(USAGE);
  const [kind, file, issuerFile] = pos;
  const fn = { cert: verifyCert, csr: verifyCsr, crl: verifyCrl, ocsp: verifyOcsp }[kind];
  if (!fn) throw new UsageError(`unknown kind "${kind}"; ${USAGE}`);
  try {
    fn(file, issuerFile, id);
  } catch (e) {
    if (e instanceof VerifyFail) {
      console.log(`FAIL ${kind} ${file}: ${e.message}`);
      return 1;
    }
    throw e;
  }
  console.log(`OK ${kind} ${file}`);
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  const msg = e instanceof UsageError ? e.message : `error: ${e && e.stack ? e.stack : e}`;
  console.error(`sm2verify: ${msg}`);
  process.exitCode = 2;
}
