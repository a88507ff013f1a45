/* empty.c - stands in for a piece that has no sources yet. */
typedef int hs_empty_translation_unit;
