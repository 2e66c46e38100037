import { auth } from "@/auth";
import { signInAction, signOutAction } from "./actions";

export default async function Home() {
  const session = await auth();
  if (!session?.user) {
    return (
      <main>
        <h1>Example app</h1>
        <p data-testid="status">You are not signed in.</p>
        <form action={signInAction}>
          <button type="submit">Sign in</button>
        </form>
      </main>
    );
  }
  return (
    <main>
      <h1>Example app</h1>
      <p data-testid="status">
        Signed in as <strong>{session.user.email}</strong>.
      </p>
      <form action={signOutAction}>
        <button type="submit">Sign out</button>
      </form>
    </main>
  );
}
