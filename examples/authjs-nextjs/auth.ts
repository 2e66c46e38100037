import NextAuth from "next-auth";
import "next-auth/jwt"; // the JWT type augmented below
import { sessionEnded } from "@/ended-sessions";

export const { handlers, auth, signIn, signOut } = NextAuth({
  providers: [
    {
      id: "gatehouse",
      name: "Gatehouse",
      type: "oidc",
      issuer: process.env.GATEHOUSE_ISSUER, // http://localhost:8080
      clientId: process.env.GATEHOUSE_CLIENT_ID,
      clientSecret: process.env.GATEHOUSE_CLIENT_SECRET,
    },
  ],
  callbacks: {
    jwt({ token, profile, account }) {
      if (profile) {
        token.role = profile.role as string;
        token.email_verified = profile.email_verified === true;
        token.sid = profile.sid as string; // Gatehouse's session, which logout tokens name
      }
      if (account?.id_token) {
        token.id_token = account.id_token; // for sign-out at Gatehouse (id_token_hint)
      }
      // Signed out at Gatehouse (app/api/backchannel-logout): no session here either.
      if (sessionEnded(token.sid)) return null;
      return token;
    },
    session({ session, token }) {
      session.user.role = token.role;
      session.user.email_verified = token.email_verified;
      return session;
    },
  },
});

declare module "next-auth" {
  interface User {
    role?: string;
    email_verified?: boolean;
  }
}

declare module "next-auth/jwt" {
  interface JWT {
    role?: string;
    email_verified?: boolean;
    id_token?: string;
    sid?: string;
  }
}
