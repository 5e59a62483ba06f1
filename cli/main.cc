#include "cli/cli.h"

int main(int argc, char** argv) { return dropq::app::Main(argc, argv); }
