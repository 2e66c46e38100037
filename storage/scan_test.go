package storage

import "testing"

func TestQualify(t *testing.T) {
	for _, c := range []struct{ alias, columns, want string }{
		{"u", "id, email", "u.id, u.email"},
		{"s", "id,\n\ttoken_hash, user_id", "s.id, s.token_hash, s.user_id"},
		{"a", "id, COALESCE(user_id, ''), session_id", "a.id, COALESCE(a.user_id, ''), a.session_id"},
		{"a", "COALESCE(n, 0)", "COALESCE(a.n, 0)"},
	} {
		if got := Qualify(c.alias, c.columns); got != c.want {
			t.Errorf("Qualify(%q, %q) = %q, want %q", c.alias, c.columns, got, c.want)
		}
	}
	for _, bad := range []string{"count(*)", "id, ", "COALESCE(lower(x), '')", "COALESCE(x", "COALESCE(x, y)", "COALESCE(x, 'a'b')"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Qualify(%q) did not panic", bad)
				}
			}()
			Qualify("t", bad)
		}()
	}
}
