import { redirect } from "next/navigation";
import { auth } from "@/auth";

// Only role ADMIN gets here; the check runs on the server for every request.
export default async function Admin() {
  const session = await auth();
  if (!session?.user) redirect("/");
  if (session.user.role !== "ADMIN") redirect("/dashboard?denied=admin");
  return (
    <main>
      <h1>Admin</h1>
      <p data-testid="admin">
        Welcome, administrator <strong>{session.user.email}</strong>.
      </p>
    </main>
  );
}
