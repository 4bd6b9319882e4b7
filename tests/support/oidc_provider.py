"""A small OpenID Connect provider for the sign-in tests: discovery, JWKS, an authorisation endpoint that approves
one configured person at once, and a token endpoint that checks the client secret, the redirect URL and the
PKCE verifier, and issues each code once.

The ID token is signed with an RSA key made by the test. ``Mock.tamper`` makes the next tokens wrong in one
way (a foreign key, another audience, expired, another nonce or issuer, ``alg: none``, HS256 keyed with the
public key) so the tests can show the app refuses each.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Form, Header, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse

ISSUER = "https://idp.test"
CLIENT_ID = "openphm-test"
CLIENT_SECRET = "s3cret-of-the-test-client"
REDIRECT = "http://localhost/oidc/callback"  # the app under test is http://localhost
KID = "test-key-1"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Mock:
    """The provider's state: who approves, which tokens it signs, the codes it has issued."""

    key: rsa.RSAPrivateKey
    subject: str = "sub-ana"
    claims: dict[str, Any] = field(default_factory=dict)
    tamper: str | None = None
    kid: str = KID
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    token_requests: int = 0

    def jwk(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return public | {"kid": self.kid, "use": "sig", "alg": "RS256"}

    def id_token(self, nonce: str) -> str:
        at = int(time.time())
        claims = {"iss": ISSUER, "sub": self.subject, "aud": CLIENT_ID, "iat": at, "exp": at + 300, "nonce": nonce}
        claims |= self.claims
        key: Any = self.key
        algorithm, headers = "RS256", {"kid": self.kid}
        match self.tamper:
            case "signature":
                key = new_key()  # same kid, another private key
            case "audience":
                claims["aud"] = "another-client"
            case "expired":
                claims |= {"iat": at - 900, "exp": at - 600}
            case "nonce":
                claims["nonce"] = "not-the-one-sent"
            case "issuer":
                claims["iss"] = "https://evil.test"
            case "none":
                return _unsigned(claims, headers)
            case "hs256":  # the classic confusion: HMAC keyed with the RSA public key's PEM
                key = self.key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                return _hs256(claims, headers, key)
        return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def _segment(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _unsigned(claims: dict[str, Any], headers: dict[str, str]) -> str:
    return f"{_segment({'alg': 'none', 'typ': 'JWT'} | headers)}.{_segment(claims)}."


def _hs256(claims: dict[str, Any], headers: dict[str, str], secret: bytes) -> str:
    """Signed by hand: PyJWT itself refuses to use a PEM public key as an HMAC secret."""
    import hmac

    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT'} | headers)}.{_segment(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def provider_app(mock: Mock) -> FastAPI:
    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    def discovery() -> dict[str, Any]:
        return {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/authorize",
            "token_endpoint": f"{ISSUER}/token",
            "jwks_uri": f"{ISSUER}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }

    @app.get("/jwks")
    def jwks() -> dict[str, Any]:
        return {"keys": [mock.jwk()]}

    @app.get("/authorize")
    def authorize(request: Request) -> RedirectResponse:
        q = request.query_params
        if q.get("client_id") != CLIENT_ID or q.get("redirect_uri") != REDIRECT or q.get("response_type") != "code":
            raise HTTPException(400, "bad authorisation request")
        if "openid" not in q.get("scope", "").split() or q.get("code_challenge_method") != "S256":
            raise HTTPException(400, "openid scope and S256 PKCE are required")
        code = secrets.token_urlsafe(16)
        mock.codes[code] = {"nonce": q["nonce"], "challenge": q["code_challenge"], "redirect": q["redirect_uri"]}
        return RedirectResponse(f"{REDIRECT}?{urlencode({'code': code, 'state': q['state']})}", status_code=302)

    @app.post("/token")
    def token(
        grant_type: Annotated[str, Form()],
        code: Annotated[str, Form()],
        redirect_uri: Annotated[str, Form()],
        code_verifier: Annotated[str, Form()],
        authorization: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        mock.token_requests += 1
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if authorization != expected:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        issued = mock.codes.pop(code, None)  # a code is good once
        if grant_type != "authorization_code" or issued is None or issued["redirect"] != redirect_uri:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != issued["challenge"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, status_code=400)
        return JSONResponse(
            {"access_token": "opaque", "token_type": "Bearer", "id_token": mock.id_token(issued["nonce"])}
        )

    return app
