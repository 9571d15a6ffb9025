-- The shop's schema and first data, run by playbooks/multicloud.yml as the app's database user.
-- Safe to run again: nothing is created or inserted twice (psql then reports INSERT 0 0 everywhere).
CREATE TABLE IF NOT EXISTS products (
    sku text PRIMARY KEY,
    name text NOT NULL,
    price_cents integer NOT NULL CHECK (price_cents >= 0),
    stock integer NOT NULL DEFAULT 0
);
INSERT INTO products (sku, name, price_cents, stock) VALUES
    ('SIR-001', 'Sirocco desert scarf', 2490, 12),
    ('SIR-002', 'Harmattan thermos', 1875, 40),
    ('SIR-003', 'Khamsin kite', 5900, 3)
ON CONFLICT (sku) DO NOTHING;

-- facts the database makes itself, once: when the shop opened, and a token no file of the playbook holds
CREATE TABLE IF NOT EXISTS shop_facts (
    name text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO shop_facts (name, value) VALUES
    ('opened', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"')),
    ('token', md5(random()::text || clock_timestamp()::text))
ON CONFLICT (name) DO NOTHING;
