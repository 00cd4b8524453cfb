-- The date an application was filed (an application received on paper is recorded later):
-- decisions and inspections are dated against it, never before it.
ALTER TABLE applications ADD COLUMN submitted_on date;
UPDATE applications SET submitted_on = (submitted_at AT TIME ZONE 'Asia/Almaty')::date;
ALTER TABLE applications ALTER COLUMN submitted_on SET NOT NULL;
