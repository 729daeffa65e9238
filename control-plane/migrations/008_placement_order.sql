-- Placement (docs/control-api.md "Placement"): what the candidate search reads, made cheap.
--
-- Placement filters every node by "has an encoder for the codec". Written as a subquery over the encoders
-- array ('backend:codec' strings) it ran once per node per placement, the placement's largest cost with
-- 1,000 nodes; the codecs the node encodes, kept in a column of their own, make it a plain array test.
CREATE FUNCTION kairo_encoder_codecs(encoders TEXT[]) RETURNS TEXT[] AS $$
  SELECT coalesce(array_agg(DISTINCT split_part(e, ':', 2)), '{}') FROM unnest(encoders) AS e
$$ LANGUAGE sql IMMUTABLE;

ALTER TABLE nodes ADD COLUMN codecs TEXT[] GENERATED ALWAYS AS (kairo_encoder_codecs(encoders)) STORED;
