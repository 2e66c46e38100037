-- The role the last import gave a user, so a later run changes the role
-- only while the user still has it: a role changed in Gatehouse since (an
-- admin demoting an account) is newer than the source and stays. '' for
-- records written before this column (their role follows the source, as
-- it did).

-- +goose Up
ALTER TABLE user_imports ADD COLUMN role TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE user_imports DROP COLUMN role;
