#!/usr/bin/python3
"""Tokens for tests/unit/identity/test_auth.c, minted by an implementation other than
ours (PyJWT + cryptography, Debian's python3-jwt and python3-cryptography).

  mint_tokens.py all DIR          keys, JWKS documents and one DIR/<case>.jwt per case
  mint_tokens.py short DIR TTL    DIR/short.jwt: a valid key-a token expiring in TTL seconds
  mint_tokens.py verify JWKS TOKENFILE AUDIENCE
                                  exit 0 when PyJWT accepts the token (checks our dev issuer)
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

TENANT = "3f2c1a9e-5b7d-4e21-9c0a-1d2e3f4a5b6c"
OTHER_TENANT = "99999999-5b7d-4e21-9c0a-1d2e3f4a5b6c"
AUDIENCE = "api://roastery"
CLIENT_ID = "6a1f5a2e-0c1b-4d3e-9f00-123456789abc"
OID = "0b7c9a52-3f1e-4d6a-8b2c-5e4f3a2b1c0d"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk(key, kid, use="sig", alg="RS256"):
    pub = key.public_key().public_numbers()
    n = pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")
    e = pub.e.to_bytes((pub.e.bit_length() + 7) // 8, "big")
    out = {"kty": "RSA", "kid": kid, "n": b64url(n), "e": b64url(e)}
    if use:
        out["use"] = use
    if alg:
        out["alg"] = alg
    return out


def write(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def write_jwks(path, keys):
    write(path, json.dumps({"keys": keys}))


def load_key(directory, name):
    with open(os.path.join(directory, name), "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def save_key(directory, name, key):
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    with open(os.path.join(directory, name), "wb") as f:
        f.write(pem)


def claims(now, **overrides):
    c = {"iss": f"https://login.microsoftonline.com/{TENANT}/v2.0", "aud": AUDIENCE,
         "tid": TENANT, "oid": OID, "name": "Test Person",
         "preferred_username": "test.person@globojava.example", "ver": "2.0",
         "iat": now, "nbf": now, "exp": now + 3600, "roles": ["DataScientist"]}
    c.update(overrides)
    return {k: v for k, v in c.items() if v is not None}


def unsigned(header, payload, signature=b""):
    """A token assembled by hand (for algorithms PyJWT refuses to produce)."""
    return ".".join([b64url(json.dumps(header).encode()), b64url(json.dumps(payload).encode()),
                     b64url(signature)])


def signed_raw(header, payload, key):
    """A genuine RS256 token over JSON texts given as they are (nesting too deep for json.dumps)."""
    signing_input = b64url(header.encode()) + "." + b64url(payload.encode())
    sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64url(sig)


def nested(depth):
    return "[" * depth + "]" * depth


def mint_all(d):
    now = int(time.time())
    key_a = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_b = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    key_enc = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_ec = ec.generate_private_key(ec.SECP256R1())
    save_key(d, "key-a.pem", key_a)

    write_jwks(os.path.join(d, "jwks.json"), [jwk(key_a, "key-a")])
    write_jwks(os.path.join(d, "jwks-rotated.json"),
               [jwk(key_a, "key-a"), jwk(key_b, "key-b"), jwk(key_small, "key-small"),
                jwk(key_enc, "key-enc", use="enc", alg=None)])
    write_jwks(os.path.join(d, "jwks-b-only.json"), [jwk(key_b, "key-b")])
    # The tenant-named copy checks {tenant} expansion in the JWKS URL.
    write_jwks(os.path.join(d, TENANT + ".json"), [jwk(key_a, "key-a")])

    def rs(c, key=key_a, kid="key-a", alg="RS256", **headers):
        h = dict(headers)
        if kid is not None:
            h["kid"] = kid
        return jwt.encode(c, key, algorithm=alg, headers=h)

    pem_a = key_a.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    hs_header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "key-a"}).encode())
    hs_payload = b64url(json.dumps(claims(now, roles=["PlatformAdmin"])).encode())
    hs_input = (hs_header + "." + hs_payload).encode()
    hs256_pubkey = hs_header + "." + hs_payload + "." + b64url(
        hmac.new(pem_a, hs_input, hashlib.sha256).digest())

    valid_ds = rs(claims(now))
    head, payload, sig = valid_ds.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["roles"] = ["PlatformAdmin"]
    tampered = ".".join([head, b64url(json.dumps(forged).encode()), sig])

    tokens = {
        "platform_admin": rs(claims(now, roles=["PlatformAdmin"])),
        "data_scientist": valid_ds,
        "store_manager": rs(claims(now, roles=["StoreManager"])),
        "multi_roles": rs(claims(now, roles=["PlatformAdmin", "StoreManager", "Unknown.Role"])),
        "mapped_roles": rs(claims(now, roles=["Platform.Admin", "Data.Scientist", "Store.Other"])),
        "delegated_ok": rs(claims(now, roles=None, scp="openid access_as_user profile")),
        "delegated_noscope": rs(claims(now, roles=None, scp="User.Read openid")),
        "delegated_prefix": rs(claims(now, roles=None, scp="access_as_user_extra")),
        "expired": rs(claims(now, iat=now - 4200, nbf=now - 4200, exp=now - 600)),
        "expired_in_skew": rs(claims(now, iat=now - 3660, nbf=now - 3660, exp=now - 60)),
        "not_yet_valid": rs(claims(now, nbf=now + 600, exp=now + 4200)),
        "iat_future": rs(claims(now, iat=now + 600, nbf=None)),
        "wrong_iss": rs(claims(now, iss=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0")),
        "wrong_aud": rs(claims(now, aud="api://other")),
        "aud_array": rs(claims(now, aud=["api://other", CLIENT_ID])),
        "wrong_tid": rs(claims(now, tid=OTHER_TENANT,
                               iss=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0")),
        "v1": rs(claims(now, iss=f"https://sts.windows.net/{TENANT}/", ver="1.0")),
        "key_b": rs(claims(now, roles=["StoreManager"]), key=key_b, kid="key-b"),
        "key_small": rs(claims(now), key=key_small, kid="key-small"),
        "key_enc": rs(claims(now), key=key_enc, kid="key-enc"),
        "alg_none": unsigned({"alg": "none", "typ": "JWT", "kid": "key-a"},
                             claims(now, roles=["PlatformAdmin"])),
        "hs256_pubkey": hs256_pubkey,
        "rs384": rs(claims(now), alg="RS384"),
        "ps256": rs(claims(now), alg="PS256"),
        "es256": jwt.encode(claims(now), key_ec, algorithm="ES256", headers={"kid": "key-a"}),
        "no_kid": rs(claims(now), kid=None),
        "tampered": tampered,
        "truncated": valid_ds[:-10],
        "two_parts": head + "." + payload,
        "huge_header": rs(claims(now), x="A" * 100_000),
        "no_roles": rs(claims(now, roles=None)),
        "no_oid": rs(claims(now, oid=None)),
        "no_exp": rs(claims(now, exp=None)),
        "exp_string": rs(claims(now, exp="tomorrow")),
        "typ_at_jwt": rs(claims(now), typ="at+jwt"),
        "crit": rs(claims(now), crit=["exp"]),
        "not_json": jwt.api_jws.PyJWS().encode(b"not json", key_a, algorithm="RS256",
                                               headers={"kid": "key-a"}),
        "name_fallback": rs(claims(now, name=None, preferred_username="pu@globojava.example")),
        "oid_as_name": rs(claims(now, name=None, preferred_username=None)),
    }
    # Size and nesting refused before any JSON is parsed (the JSON parser recurses per level).
    hdr = '{"alg":"RS256","typ":"JWT","kid":"key-a"'
    body = json.dumps(claims(now))[:-1]
    tokens.update({
        "deep_header": signed_raw(hdr + ',"x":' + nested(5000) + "}", body + "}", key_a),
        "deep_payload": signed_raw(hdr + "}", body + ',"x":' + nested(5000) + "}", key_a),
        "payload_depth_32": signed_raw(hdr + "}", body + ',"x":' + nested(31) + "}", key_a),
        "payload_depth_33": signed_raw(hdr + "}", body + ',"x":' + nested(32) + "}", key_a),
        "header_depth_33": signed_raw(hdr + ',"x":' + nested(32) + "}", body + "}", key_a),
        "long_header": rs(claims(now), x="A" * 1100),
        "long_payload": rs(claims(now, x="A" * 11000)),
    })
    for name, token in tokens.items():
        write(os.path.join(d, name + ".jwt"), token)


def mint_short(d, ttl):
    now = int(time.time())
    token = jwt.encode(claims(now, exp=now + ttl), load_key(d, "key-a.pem"), algorithm="RS256",
                       headers={"kid": "key-a"})
    write(os.path.join(d, "short.jwt"), token)


def verify(jwks_path, token_path, audience):
    with open(jwks_path) as f:
        keys = jwt.PyJWKSet.from_dict(json.load(f))
    with open(token_path) as f:
        token = f.read().strip()
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in keys.keys if k.key_id == kid)
    c = jwt.decode(token, key.key, algorithms=["RS256"], audience=audience,
                   options={"require": ["exp", "iat", "nbf", "iss", "aud"]})
    print(json.dumps(c))


def main(argv):
    if len(argv) == 3 and argv[1] == "all":
        mint_all(argv[2])
    elif len(argv) == 4 and argv[1] == "short":
        mint_short(argv[2], int(argv[3]))
    elif len(argv) == 5 and argv[1] == "verify":
        verify(argv[2], argv[3], argv[4])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
