import { redirect } from "next/navigation";
import { auth } from "@/auth";
import { signOutAction } from "../actions";

export default async function Dashboard({ searchParams }: { searchParams: Promise<{ denied?: string }> }) {
  const session = await auth();
  if (!session?.user) redirect("/");
  const { denied } = await searchParams;
  const { email, name, role, email_verified } = session.user;
  return (
    <main>
      <h1>Dashboard</h1>
      {denied === "admin" && (
        <p role="alert" data-testid="denied">
          The admin area is for administrators only.
        </p>
      )}
      <dl>
        <dt>Name</dt>
        <dd data-testid="name">{name}</dd>
        <dt>Email</dt>
        <dd data-testid="email">{email}</dd>
        <dt>Role</dt>
        <dd data-testid="role">{role}</dd>
        <dt>Email verified</dt>
        <dd data-testid="email-verified">{String(email_verified)}</dd>
      </dl>
      <form action={signOutAction}>
        <button type="submit">Sign out</button>
      </form>
    </main>
  );
}
