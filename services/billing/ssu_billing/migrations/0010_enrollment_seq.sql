-- The seq of the last registry event applied to an enrollment (0: its events carried none);
-- an older one is ignored (DESIGN §2, order).
ALTER TABLE enrollments ADD COLUMN seq integer NOT NULL DEFAULT 0;
