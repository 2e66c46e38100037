"use server";

import { headers } from "next/headers";
import { redirect } from "next/navigation";
import { getToken } from "next-auth/jwt";
import { signIn, signOut } from "@/auth";

export async function signInAction() {
  await signIn("gatehouse", { redirectTo: "/dashboard" });
}

// Signs out of this app and then of Gatehouse (RP-initiated logout), so the
// next sign-in shows Gatehouse's form again. Gatehouse ends its session and
// sends the browser back to post_logout_redirect_uri, which must be registered
// for the client (`--post-logout-redirect-uri`).
export async function signOutAction() {
  const h = await headers();
  const appURL = new URL(
    "/",
    process.env.AUTH_URL ?? `${h.get("x-forwarded-proto") ?? "http"}://${h.get("host")}`,
  );
  // The ID token stays in the encrypted session cookie; it never reaches the browser's JavaScript.
  const token = await getToken({
    req: { headers: h },
    secret: process.env.AUTH_SECRET,
    secureCookie: appURL.protocol === "https:",
  });
  await signOut({ redirect: false });

  const issuer = process.env.GATEHOUSE_ISSUER!.replace(/\/$/, "");
  const discovery = await fetch(`${issuer}/.well-known/openid-configuration`, { cache: "no-store" });
  const { end_session_endpoint } = (await discovery.json()) as { end_session_endpoint?: string };
  if (!end_session_endpoint) redirect("/");

  const logout = new URL(end_session_endpoint);
  logout.searchParams.set("client_id", process.env.GATEHOUSE_CLIENT_ID!);
  logout.searchParams.set("post_logout_redirect_uri", appURL.href);
  if (token?.id_token) logout.searchParams.set("id_token_hint", token.id_token);
  redirect(logout.href);
}
