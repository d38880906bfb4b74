package providers

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// A secret is only ever given by reference: the name of an environment
// variable (NAME_env) or a file (NAME_file), exactly one of them, so that
// configuration files can be shared, versioned and shown without leaking
// it. The introspection client secret and the etcd password follow the
// same rules, stated here once.

var envVarPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CheckSecretRef reports what is wrong with the reference to the secret
// called name: fields name+"_env" and name+"_file" of the block at path.
func CheckSecretRef(path, name, env, file string) []Problem {
	switch {
	case env != "" && file != "":
		return []Problem{{Path: path, Message: fmt.Sprintf("set only one of %s_env and %s_file", name, name)}}
	case env == "" && file == "":
		return []Problem{{Path: path, Message: fmt.Sprintf("set %s_env or %s_file", name, name)}}
	case env != "" && !envVarPattern.MatchString(env):
		return []Problem{{Path: path + "." + name + "_env", Message: `must be an environment variable name (letters, digits and "_", not starting with a digit)`}}
	}
	return nil
}

// ReadSecret reads the secret called name from the environment variable env
// or the file, whichever is set. A secret file's trailing newline is not
// part of the secret; an unset variable or empty secret is an error.
func (r SecretResolver) ReadSecret(name, env, file string) (string, error) {
	lookup, read := r.LookupEnv, r.ReadFile
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if read == nil {
		read = os.ReadFile
	}
	if env != "" {
		v, ok := lookup(env)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s is not set", env)
		}
		return v, nil
	}
	b, err := read(file)
	if err != nil {
		return "", fmt.Errorf("cannot read %s_file: %v", name, err)
	}
	secret := strings.TrimRight(string(b), "\r\n")
	if secret == "" {
		return "", fmt.Errorf("%s_file %s is empty", name, file)
	}
	return secret, nil
}
