import { createRemoteJWKSet, jwtVerify } from "jose";
import { endSession } from "@/ended-sessions";

// OpenID Connect Back-Channel Logout 1.0: when a user's Gatehouse session ends
// (they signed out here or in any other app, changed their password, …)
// Gatehouse POSTs a logout token naming it. Register this URL for the client:
//   --backchannel-logout-uri http://localhost:3000/api/backchannel-logout --backchannel-logout-session-required
const issuer = process.env.GATEHOUSE_ISSUER!;
const BACKCHANNEL_LOGOUT = "http://schemas.openid.net/event/backchannel-logout";

// Gatehouse's signing keys, from discovery on first use (jose caches them and
// refetches on an unknown kid).
let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
async function keys() {
  if (!jwks) {
    const res = await fetch(`${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`, { cache: "no-store" });
    if (!res.ok) throw new Error(`discovery: HTTP ${res.status}`);
    const { jwks_uri } = (await res.json()) as { jwks_uri: string };
    jwks = createRemoteJWKSet(new URL(jwks_uri));
  }
  return jwks;
}

export async function POST(request: Request) {
  try {
    const logoutToken = (await request.formData()).get("logout_token");
    if (typeof logoutToken !== "string") throw new Error("no logout_token");
    const { payload } = await jwtVerify(logoutToken, await keys(), {
      issuer,
      audience: process.env.GATEHOUSE_CLIENT_ID!,
      typ: "logout+jwt",
      requiredClaims: ["iat", "exp", "jti", "sid", "events"],
      maxTokenAge: "2m", // iat: sent just now
    });
    const events = payload.events as Record<string, unknown> | null;
    if (typeof events?.[BACKCHANNEL_LOGOUT] !== "object") throw new Error("not a logout event");
    if ("nonce" in payload) throw new Error("a logout token has no nonce"); // so an ID token is never taken for one
    // Ending an ended session again changes nothing, so a replayed token
    // (same jti) is harmless here and jti is not remembered.
    endSession(payload.sid as string);
    return new Response(null, { headers: { "Cache-Control": "no-store" } });
  } catch (err) {
    console.warn("back-channel logout refused:", (err as Error).message);
    return Response.json({ error: "invalid_request" }, { status: 400, headers: { "Cache-Control": "no-store" } });
  }
}
