-- Each change of an enrollment that is published counts up its seq, carried by the enrollment
-- events so that a consumer can ignore one older than what it holds (DESIGN §2, order).
ALTER TABLE enrollments ADD COLUMN seq integer NOT NULL DEFAULT 1;
