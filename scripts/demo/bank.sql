-- The demo database `bank`: 5,000 accounts and 20,000 transactions, the same on every load.
-- Values come from hashint8() of the row number, not random(): they look scattered, yet every demo
-- shows the same numbers and a seed's expression gives the same result for everyone who tries it.

CREATE TABLE account (
  id           bigint PRIMARY KEY,
  owner        text,
  balance      numeric(12,2),
  credit_limit numeric(12,2),
  opened_on    date
);

CREATE TABLE txn (
  id         bigserial PRIMARY KEY,
  account_id bigint REFERENCES account,
  amount     numeric(12,2),
  at         timestamptz
);

INSERT INTO account (id, owner, balance, credit_limit, opened_on)
SELECT i,
       (ARRAY['Ada','Grace','Alan','Edsger','Barbara','Donald','Frances','Ken','Margaret','Dennis',
              'Radia','John','Leslie','Niklaus','Sophie','Tony'])[1 + i % 16]
         || ' ' ||
       (ARRAY['Lovelace','Hopper','Turing','Dijkstra','Liskov','Knuth','Allen','Thompson',
              'Hamilton','Ritchie','Perlman','Backus','Lamport','Wirth','Wilson','Hoare',
              'Codd'])[1 + (i * 7) % 17],
       (abs(hashint8(i)) % 2500000) / 100.0 - 2000,   -- from -2,000.00 to 22,999.99
       (1 + abs(hashint8(-i)) % 5) * 1000,             -- 1,000 to 5,000
       date '2015-01-01' + (abs(hashint8(i + 1000000)) % 3650)::int
FROM generate_series(1, 5000) AS i;

INSERT INTO txn (account_id, amount, at)
SELECT 1 + abs(hashint8(j)) % 5000,
       (abs(hashint8(-j)) % 200000) / 100.0 - 1000,   -- from -1,000.00 to 999.99
       timestamptz '2024-01-01 00:00:00+00' + (j * 1576 + abs(hashint8(j + 1000000)) % 1576) * interval '1 second'
FROM generate_series(1, 20000) AS j;

CREATE INDEX txn_account_id ON txn (account_id);
ANALYZE account;
ANALYZE txn;
