/*
 * Corpus replay for fuzz targets: runs LLVMFuzzerTestOneInput over every file
 * in the directories or files given, so that each fuzz target's corpus runs
 * (under the sanitizers) in the test suite without libFuzzer.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX (4u << 20)

static int run_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        uint8_t *buf;
        size_t n;

        if (f == NULL) {
                fprintf(stderr, "replay: %s: cannot open\n", path);
                return -1;
        }
        buf = malloc(REPLAY_MAX);
        if (buf == NULL) {
                fclose(f);
                return -1;
        }
        n = fread(buf, 1, REPLAY_MAX, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
        free(buf);
        return 0;
}

int main(int argc, char **argv)
{
        int count = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;
                DIR *d;
                struct dirent *de;

                if (stat(argv[i], &st) != 0) {
                        fprintf(stderr, "replay: %s: missing\n", argv[i]);
                        return 1;
                }
                if (!S_ISDIR(st.st_mode)) {
                        if (run_file(argv[i]) != 0)
                                return 1;
                        count++;
                        continue;
                }
                if ((d = opendir(argv[i])) == NULL)
                        return 1;
                while ((de = readdir(d)) != NULL) {
                        char path[4096];

                        if (de->d_name[0] == '.')
                                continue;
                        snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
                        if (run_file(path) != 0) {
                                closedir(d);
                                return 1;
                        }
                        count++;
                }
                closedir(d);
        }
        if (count == 0) {
                fprintf(stderr, "replay: empty corpus\n");
                return 1;
        }
        printf("replayed %d inputs\n", count);
        return 0;
}
