/* r5_image_set destructor and stage timings (images.h). */
#include "images.h"

#include <stdio.h>
#include <stdlib.h>

void r5_image_set_free(r5_image_set *set)
{
	if (!set)
		return;
	r5_header_clear(&set->header);
	r5_array_free(set->images);
	r5_array_free(set->gfactor);
	free(set->geometry);
	free(set);
}

void r5_image_set_add_stage(r5_image_set *set, const char *name, double seconds)
{
	if (!set || set->n_stages >= R5_MAX_STAGES)
		return;
	r5_stage_time *t = &set->stages[set->n_stages++];
	snprintf(t->name, sizeof t->name, "%s", name ? name : "");
	t->seconds = seconds;
}
