/*
 * The table of GM/T 0015 private certificate extensions: the name used in
 * JSON files and profiles, and the OID (GMT-REFERENCE.md §1.2).
 */
#include <string.h>

#include "x509.h"

static const struct {
        const char *name;
        const char *oid;
} pexts[GMCA_PEXT_COUNT] = {
    [GMCA_PEXT_IDENTITY_CARD] = {"identity_card_number", "1.2.156.10260.4.1.1"},
    [GMCA_PEXT_INSURANCE] = {"insurance_number", "1.2.156.10260.4.1.2"},
    [GMCA_PEXT_IC_REGISTRATION] = {"ic_registration_number", "1.2.156.10260.4.1.3"},
    [GMCA_PEXT_ORG_CODE] = {"organization_code", "1.2.156.10260.4.1.4"},
    [GMCA_PEXT_TAXATION] = {"taxation_number", "1.2.156.10260.4.1.5"},
    [GMCA_PEXT_USCC] = {"unified_social_credit_code", "1.2.156.10260.4.4"},
};

const char *gmca_pext_name(enum gmca_pext p)
{
        return (unsigned)p < GMCA_PEXT_COUNT ? pexts[p].name : NULL;
}

const char *gmca_pext_oid(enum gmca_pext p)
{
        return (unsigned)p < GMCA_PEXT_COUNT ? pexts[p].oid : NULL;
}

int gmca_pext_from_name(const char *name)
{
        for (int i = 0; i < GMCA_PEXT_COUNT; i++)
                if (strcmp(pexts[i].name, name) == 0)
                        return i;
        return -1;
}
