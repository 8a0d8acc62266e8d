// Linked with one stage's whole library and the layers below it (CMakeLists.txt): building
// it is the check that the stage uses no other stage's code.
int main() { return 0; }
