// CShims is header-only: see include/CShims.h.
